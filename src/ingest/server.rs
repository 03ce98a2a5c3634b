//! The accept loop: plain or TLS (reloaded when the PEM files change or on SIGHUP), HTTP/1.1 and
//! HTTP/2, a connection cap, a header deadline, and graceful shutdown.

use super::config::TlsConfig;
use super::sources::SourceCounts;
use crate::telemetry::ingest::IngestMetrics;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no certificate.
    #[error("TLS certificate {path}: {message}")]
    Cert { path: String, message: String },
    /// The key file is unreadable or holds no key.
    #[error("TLS key {path}: {message}")]
    Key { path: String, message: String },
    /// rustls refused the pair.
    #[error("TLS certificate and key do not form a valid configuration: {0}")]
    Config(String),
}

/// Holds the current TLS configuration and swaps it when the files change.
pub struct TlsReloader {
    cfg: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl TlsReloader {
    /// Loads the certificate and key; fails if they are unusable.
    pub fn new(cfg: TlsConfig) -> Result<Arc<Self>, TlsError> {
        let sc = load_tls(&cfg.cert, &cfg.key)?;
        let stamp = mtimes(&cfg);
        Ok(Arc::new(Self { cfg, current: RwLock::new(Arc::new(sc)), stamp: RwLock::new(stamp) }))
    }

    /// The configuration to use for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reloads now. A broken replacement keeps the old certificate in service.
    pub fn reload(&self) -> Result<(), TlsError> {
        let sc = load_tls(&self.cfg.cert, &self.cfg.key)?;
        if let Ok(mut g) = self.current.write() {
            *g = Arc::new(sc);
        }
        if let Ok(mut s) = self.stamp.write() {
            *s = mtimes(&self.cfg);
        }
        tracing::info!(cert = %self.cfg.cert.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// Reloads if either file's modification time changed.
    pub fn reload_if_changed(&self) {
        let now = mtimes(&self.cfg);
        let before = self.stamp.read().map(|s| *s).unwrap_or(None);
        if now.is_some()
            && now != before
            && let Err(e) = self.reload()
        {
            tracing::error!(error = %e, "TLS reload failed; keeping the previous certificate");
            if let Ok(mut s) = self.stamp.write() {
                *s = now;
            }
        }
    }

    /// Watches the files (and SIGHUP) until cancelled.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.reload_interval.max(Duration::from_millis(100)));
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hup_fut = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hup_fut = std::future::pending::<()>();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => self.reload_if_changed(),
                _ = hup_fut => {
                    if let Err(e) = self.reload() {
                        tracing::error!(error = %e, "TLS reload on SIGHUP failed; keeping the previous certificate");
                    }
                }
            }
        }
    }
}

fn mtimes(cfg: &TlsConfig) -> Option<(SystemTime, SystemTime)> {
    let c = std::fs::metadata(&cfg.cert).and_then(|m| m.modified()).ok()?;
    let k = std::fs::metadata(&cfg.key).and_then(|m| m.modified()).ok()?;
    Some((c, k))
}

fn load_tls(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let cert_err = |message: String| TlsError::Cert { path: cert.display().to_string(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.display().to_string(), message: e.to_string() })?;
    let mut sc = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(sc)
}

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one source address (0 = unlimited).
    pub max_connections_per_source: usize,
    /// Deadline for request headers (and the TLS handshake).
    pub header_timeout: Duration,
}

/// Most concurrent HTTP/2 streams on one connection: each may hold a body before it is
/// authenticated, so one connection may not open hyper's default of 200.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// The peer address of a request, added as an extension.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Serves `router` on `listener` until `cancel`, then lets open requests finish for at most
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<TlsReloader>>,
    limits: ConnLimits,
    metrics: IngestMetrics,
    cancel: CancellationToken,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let sources = SourceCounts::new(limits.max_connections_per_source);
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        // Each stream may hold a body up to max_body_bytes before it is authenticated.
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let builder = Arc::new(builder);
    while let Some((stream, peer, permit)) = accept(&listener, &permits, &cancel).await {
        // Closed at once (its slot freed with it): one address may not hold every slot.
        let Some(source_slot) = sources.admit(peer.ip()) else {
            metrics.source_capped.inc();
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            router: router.clone(),
            builder: builder.clone(),
            tls: tls.as_ref().map(|t| t.current()),
            header_timeout: limits.header_timeout,
            metrics: metrics.clone(),
            watcher: graceful.watcher(),
            peer,
        };
        tokio::spawn(async move {
            let _held = (permit, source_slot);
            conn.metrics.connections.inc();
            let metrics = conn.metrics.clone();
            conn.serve(stream).await;
            metrics.connections.dec();
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("some webhook connections did not finish within the shutdown grace period");
    }
}

/// The next connection, once a connection slot is free; `None` on shutdown. Extra clients wait
/// in the kernel backlog rather than being accepted and held.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    cancel: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        _ = cancel.cancelled() => return None,
        p = permits.clone().acquire_owned() => p.ok()?,
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            r = listener.accept() => match r {
                Ok((stream, peer)) => return Some((stream, peer, permit)),
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// What one connection's task needs.
struct Conn {
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    tls: Option<Arc<ServerConfig>>,
    header_timeout: Duration,
    metrics: IngestMetrics,
    watcher: Watcher,
    peer: SocketAddr,
}

impl Conn {
    /// Serves the connection (after the TLS handshake, if any) until it closes.
    async fn serve(self, stream: TcpStream) {
        let Conn { router, builder, tls, header_timeout, watcher, peer, .. } = self;
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            seen.store(true, Ordering::Relaxed);
            req.extensions_mut().insert(PeerAddr(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let Some(sc) = tls else {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            return first_request_deadline(watcher.watch(conn.into_owned()), &started, header_timeout).await;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(sc);
        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), svc);
                first_request_deadline(watcher.watch(conn.into_owned()), &started, header_timeout).await;
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }
}

/// Serves a connection, but closes it if no request has started within `limit` of it opening.
///
/// hyper's header timeout only starts once hyper-util has sniffed the protocol (HTTP/1.1 or
/// HTTP/2 preface) from the first bytes; a client that connects and sends nothing (or one byte)
/// would otherwise hold a connection slot forever, and enough of them lock everyone out of the
/// capped listener.
async fn first_request_deadline<F: std::future::Future>(conn: F, started: &AtomicBool, limit: Duration) {
    tokio::pin!(conn);
    tokio::select! {
        _ = &mut conn => return,
        _ = tokio::time::sleep(limit) => {}
    }
    if started.load(Ordering::Relaxed) {
        conn.await;
    }
}
