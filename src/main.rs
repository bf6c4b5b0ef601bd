use clap::Parser;
use marquee::cli::LogFormat;
use tracing_subscriber::EnvFilter;

// mimalloc instead of glibc's malloc: see Cargo.toml for why. Only the binary sets it; the
// library's tests keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = marquee::cli::Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MARQUEE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("warn,marquee=info")),
        )
        .with_writer(std::io::stderr);
    match cli.log_format() {
        // One JSON object per line, with the fields of every enclosing span (request ids).
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Text => logs.init(),
    }
    match marquee::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
