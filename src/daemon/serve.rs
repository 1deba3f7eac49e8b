//! The HTTP server, plain or TLS, bounded so that misbehaving clients cannot take the API
//! down: at most `max_connections` connections at once (kept under the process's file
//! descriptor limit; a connection over it is closed at once, with a log line saying why),
//! a connection that sends or receives nothing for `idle_timeout` is closed, request
//! headers must arrive within `header_timeout` and bodies within `body_timeout`. Slowloris
//! clients, and idle keep-alive connections piling up, end there.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DaemonSettings;
use crate::error::{Error, Result};

/// File descriptors kept for everything else the daemon opens (the catalog, Docker, the
/// store, the dump tools, pages).
const FD_RESERVE: u64 = 64;

/// The connection cap the process can afford: the configured one, lowered (and said so)
/// when the file descriptor limit would not leave room for the rest.
pub fn connection_cap(configured: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let room = soft.saturating_sub(FD_RESERVE).max(8);
    if configured as u64 > room {
        let cap = room as usize;
        tracing::warn!(
            "daemon.max_connections is {configured}, but the file descriptor limit is {soft}: serving at most {cap} connections (raise LimitNOFILE / ulimit -n to allow more)"
        );
        eprintln!("firedrill daemon: the file descriptor limit ({soft}) allows {cap} connections at once, not daemon.max_connections = {configured}");
        cap
    } else {
        configured
    }
}

/// Holds a connection slot per accepted connection and closes idle ones.
#[derive(Clone)]
pub struct Bounded<A> {
    inner: A,
    slots: Arc<Semaphore>,
    cap: usize,
    idle: Duration,
    /// When the last "over the cap" line was logged (unix seconds): at most one a minute.
    last_refusal_log: Arc<AtomicI64>,
}

impl<A> Bounded<A> {
    pub fn new(inner: A, cap: usize, idle: Duration) -> Self {
        Bounded {
            inner,
            slots: Arc::new(Semaphore::new(cap)),
            cap,
            idle,
            last_refusal_log: Arc::new(AtomicI64::new(0)),
        }
    }
}

impl<A, S> Accept<TcpStream, S> for Bounded<A>
where
    A: Accept<Idle<TcpStream>, S> + Clone + Send + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future =
        Pin<Box<dyn std::future::Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            let now = jiff::Timestamp::now().as_second();
            let last = self.last_refusal_log.load(Ordering::Relaxed);
            if now - last >= 60
                && self
                    .last_refusal_log
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                tracing::warn!(
                    "refusing connections (from {peer} and others): {} are open, daemon.max_connections; idle ones close after daemon.idle_timeout",
                    self.cap
                );
            }
            // Dropped here: the client sees the connection closed.
            return Box::pin(async { Err(io::Error::other("over daemon.max_connections")) });
        };
        let idle = Idle::new(stream, self.idle, slot);
        let inner = self.inner.clone();
        Box::pin(async move { inner.accept(idle, service).await })
    }
}

/// A stream closed once nothing has moved either way for its idle time. It holds its
/// connection slot until it is dropped.
pub struct Idle<S> {
    inner: S,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl<S> Idle<S> {
    fn new(inner: S, idle: Duration, slot: OwnedSemaphorePermit) -> Self {
        Idle {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            _slot: slot,
        }
    }

    fn moved(&mut self) {
        let at = tokio::time::Instant::now() + self.idle;
        self.timer.as_mut().reset(at);
    }

    /// Ready with an error once the connection has been idle too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "idle connection closed (daemon.idle_timeout)",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `stop` fires (then lets requests in flight finish for
/// up to `grace`), over TLS when the settings name a certificate.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    settings: &DaemonSettings,
    stop: crate::cancel::Stop,
) -> Result<()> {
    let cap = connection_cap(settings.max_connections);
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        settings.body_timeout,
    ));
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        let grace = settings.grace;
        tokio::spawn(async move {
            stop.stopped().await;
            handle.graceful_shutdown(Some(grace));
        });
    }
    let std_listener = listener
        .into_std()
        .map_err(|e| Error::infra(format!("the API's listener: {e}")))?;
    let bounded = Bounded::new(
        axum_server::accept::DefaultAcceptor::new(),
        cap,
        settings.idle_timeout,
    );
    let header_timeout = settings.header_timeout;
    let configure =
        |b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>| {
            b.http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
        };
    let served = match settings.tls.clone() {
        None => {
            let mut server = axum_server::from_tcp(std_listener)
                .acceptor(bounded)
                .handle(handle);
            configure(server.http_builder());
            server
                .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await
        }
        Some((cert, key)) => {
            crate::tls::install_provider();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| {
                    Error::config(format!(
                        "cannot use the TLS certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                    .with_hint("daemon.tls_cert must be a PEM certificate chain and daemon.tls_key its PEM private key")
                })?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(bounded);
            let mut server = axum_server::from_tcp(std_listener)
                .acceptor(acceptor)
                .handle(handle);
            configure(server.http_builder());
            server
                .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await
        }
    };
    served.map_err(|e| Error::infra(format!("the API's server: {e}")))
}
