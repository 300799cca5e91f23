//! The HTTP/1.1 connection loop, in place of `axum::serve`, for what an anonymous client could
//! otherwise exhaust:
//! - a connection must send its request headers within the header timeout, counted from its
//!   first byte (from connecting, for a connection's first request), so half-sent requests
//!   do not stay open;
//! - a request's body must arrive whole within the body timeout (`web::body_limit` reads it
//!   by the [`BodyDeadline`] set here, and answers 408 past it);
//! - a kept-alive connection with nothing read or written for the idle timeout is closed;
//! - at most `max_connections` are open at once: past that, new connections wait in the
//!   listen backlog (they hold no file descriptor of ours) until one closes, and a warning
//!   says so, at most once per [`WARN_EVERY`].
//!
//! hyper's own `header_read_timeout` is not used: its clock also runs while a kept-alive
//! connection waits for its next request, so it cannot tell a slow client from an idle one.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::web::body_limit::BodyDeadline;

/// How often, at most, the connection cap's warning is logged.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// The bounds on client connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
}

impl Limits {
    /// The limits configured.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            header_timeout: Duration::from_secs(u64::from(config.header_timeout_seconds)),
            body_timeout: Duration::from_secs(u64::from(config.body_timeout_seconds)),
            idle_timeout: Duration::from_secs(u64::from(config.idle_timeout_seconds)),
            max_connections: config.max_connections.max(1),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting, lets every connection finish the request it is on (idle ones close at once) and
/// returns once all are closed. Requests carry the peer's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut warned: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached: new connections wait until one closes (PORTCULLIS_MAX_CONNECTIONS)"
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin on the same error.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            stopping.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds a permit until it closes: all of them back means all closed.
    let _ = permits.acquire_many(limits.max_connections).await;
}

/// Serves one connection until it closes, is too slow or idle, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let clock = Arc::new(Mutex::new(Clock::new(Instant::now())));
    let io = TokioIo::new(Watched {
        inner: stream,
        clock: clock.clone(),
    });
    let requests = clock.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = Busy::start(&requests);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
            .extensions_mut()
            .insert(BodyDeadline(Instant::now() + limits.body_timeout));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our clock below times headers instead (see the module's comment).
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut draining = false;
    loop {
        let check = lock(&clock).next_check(&limits, Instant::now());
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(check) => {
                if let Some(why) = lock(&clock).expired(&limits, Instant::now()) {
                    tracing::debug!(%peer, why, "closing a connection");
                    return;
                }
            }
        }
    }
}

fn lock(clock: &Mutex<Clock>) -> std::sync::MutexGuard<'_, Clock> {
    // The clock holds plain numbers: a panic elsewhere cannot leave it half-written.
    clock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for request headers that have begun to arrive (or for the first request).
    Head,
    /// A request is being answered (its handler runs).
    Busy,
    /// Waiting for a next request, nothing of it read yet.
    Idle,
}

/// What a connection is doing, and since when.
#[derive(Debug)]
struct Clock {
    phase: Phase,
    since: Instant,
    requests: usize,
}

impl Clock {
    fn new(now: Instant) -> Self {
        Self {
            phase: Phase::Head,
            since: now,
            requests: 0,
        }
    }

    fn read(&mut self, now: Instant) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.since = now;
        }
    }

    /// A response still being written after its handler returned (an event stream, a
    /// download) keeps an idle connection alive while it makes progress.
    fn wrote(&mut self, now: Instant) {
        if self.phase == Phase::Idle {
            self.since = now;
        }
    }

    /// Why the connection must close now, if it must.
    fn expired(&self, limits: &Limits, now: Instant) -> Option<&'static str> {
        let waited = now.saturating_duration_since(self.since);
        match self.phase {
            Phase::Head if waited >= limits.header_timeout => Some("request headers too slow"),
            Phase::Idle if waited >= limits.idle_timeout => Some("idle"),
            _ => None,
        }
    }

    /// When to look again: no later than the current phase's deadline, nor than a header
    /// deadline that could begin at once.
    fn next_check(&self, limits: &Limits, now: Instant) -> Instant {
        let soonest_head = now + limits.header_timeout;
        match self.phase {
            Phase::Head => self.since + limits.header_timeout,
            Phase::Idle => (self.since + limits.idle_timeout).min(soonest_head),
            Phase::Busy => soonest_head,
        }
    }
}

/// Marks the connection busy while a request's handler runs.
struct Busy(Arc<Mutex<Clock>>);

impl Busy {
    fn start(clock: &Arc<Mutex<Clock>>) -> Self {
        let mut c = lock(clock);
        c.requests += 1;
        c.phase = Phase::Busy;
        drop(c);
        Self(clock.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut c = lock(&self.0);
        c.requests = c.requests.saturating_sub(1);
        if c.requests == 0 {
            c.phase = Phase::Idle;
            c.since = Instant::now();
        }
    }
}

/// The connection's stream, telling its clock when bytes come and go.
struct Watched {
    inner: TcpStream,
    clock: Arc<Mutex<Clock>>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            lock(&self.clock).read(Instant::now());
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            lock(&self.clock).wrote(Instant::now());
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            lock(&self.clock).wrote(Instant::now());
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
        }
    }

    #[test]
    fn a_silent_new_connection_has_the_header_timeout() {
        let t0 = Instant::now();
        let clock = Clock::new(t0);
        assert_eq!(clock.expired(&limits(), t0 + Duration::from_secs(9)), None);
        assert!(
            clock
                .expired(&limits(), t0 + Duration::from_secs(10))
                .is_some()
        );
    }

    #[test]
    fn an_idle_connection_waits_the_idle_timeout_and_a_started_head_the_header_timeout() {
        let t0 = Instant::now();
        let mut clock = Clock::new(t0);
        clock.phase = Phase::Idle;
        let s = |n| t0 + Duration::from_secs(n);
        assert_eq!(clock.expired(&limits(), s(30)), None, "idle, within 60 s");
        assert!(clock.next_check(&limits(), s(30)) <= s(40));
        clock.read(s(50));
        assert_eq!(clock.phase, Phase::Head);
        assert_eq!(clock.expired(&limits(), s(59)), None);
        assert!(
            clock.expired(&limits(), s(60)).is_some(),
            "head begun at 50"
        );
    }

    #[test]
    fn writing_keeps_an_idle_connection_alive() {
        let t0 = Instant::now();
        let mut clock = Clock::new(t0);
        clock.phase = Phase::Idle;
        clock.wrote(t0 + Duration::from_secs(50));
        assert_eq!(
            clock.expired(&limits(), t0 + Duration::from_secs(100)),
            None
        );
    }
}
