//! The HTTP server: accepting connections, at most `max_connections` at once, each served by
//! hyper's HTTP/1 with a header read timeout, over TLS (rustls, aws-lc-rs) when a certificate
//! is configured. `axum::serve` has neither a header read timeout nor a connection cap, so a
//! slowloris client (headers sent a byte at a time, or connections opened and left idle)
//! could hold every socket and file descriptor of the process; here such a connection is
//! closed when its headers have not arrived within `header_read_timeout` (also between
//! requests on a kept-alive connection: the timer runs whenever hyper waits for a request
//! head), and connections over the cap are closed as soon as they are accepted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How connections are accepted and served.
#[derive(Clone, Debug)]
pub struct Transport {
    /// Connections served at once; further ones are closed when accepted.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (and a kept-alive connection
    /// may stay idle between requests); also bounds the TLS handshake.
    pub header_read_timeout: Duration,
    /// Certificate chain and private key (PEM files): HTTPS when set.
    pub tls: Option<TlsFiles>,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Transport {
    /// 1,024 connections (a process's default soft limit on open files is 1,024 on most Linux
    /// systems; the database pool and data files need a few more, so raise `ulimit -n` with
    /// it) and 10 s for headers: a browser or TV client sends a request's headers in one
    /// packet, so only a stalled or hostile client comes near it.
    fn default() -> Self {
        Transport {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// The server's TLS settings from the configured PEM files (rustls with aws-lc-rs, the one
/// crypto provider in the binary; HTTP/1.1 only).
pub fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let cert_pem = pem(&files.cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!("{}: not a PEM certificate chain: {e}", files.cert.display())
        })?;
    if certs.is_empty() {
        bail!("{}: no certificate in the file", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&pem(&files.key)?)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate and key",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (at most `grace`). Every request carries `ConnectInfo<SocketAddr>` (the per-IP rate
/// limit reads it).
pub async fn run(
    listener: TcpListener,
    router: Router,
    transport: &Transport,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(transport.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(transport.header_read_timeout)
        .keep_alive(true);
    let handshake_timeout = transport.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pass, rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::telemetry::connection_refused();
            tracing::debug!(%peer, "connection refused: at the connection cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, request).await }
        });
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = tls else {
                return serve_io(&http, stream, service, watcher, peer).await;
            };
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_io(&http, stream, service, watcher, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => {
                    crate::telemetry::header_timeout();
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "requests still in flight after the grace period; closing");
        }
    }
    Ok(())
}

/// Serves one connection (plain or TLS) until it ends or shutdown closes it.
async fn serve_io<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = axum::body::Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http.serve_connection(TokioIo::new(io), service);
    finish(watcher.watch(conn).await, peer);
}

fn finish(result: hyper::Result<()>, peer: SocketAddr) {
    if let Err(e) = result {
        if e.is_timeout() {
            crate::telemetry::header_timeout();
            tracing::debug!(%peer, "connection closed: headers not received in time");
        } else {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
