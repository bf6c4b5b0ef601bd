# Multi-stage build of `marquee` (issue 12). Build: `docker build -t marquee .`
# Stage 1 compiles a release binary; stage 2 is a slim Debian with only what `marquee demo`
# needs at run time to fetch MovieLens-100K (pip for the recbole wheel, npm for
# vega-datasets) and CA certificates for TMDb.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin marquee

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3-pip npm curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/marquee /usr/local/bin/marquee
WORKDIR /srv
VOLUME /srv/data
ENV MARQUEE_DATA_DIR=/srv/data MARQUEE_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --retries=60 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["marquee"]
CMD ["serve"]
