//! Serving: the accept loop, per-connection limits and timeouts, graceful shutdown.
//!
//! Owns everything between the listening socket and the router: it accepts TCP connections,
//! refuses those past the caps (all connections, and per client IP) by closing them at once,
//! turns each accepted socket into a stream through an [`Acceptor`] (the identity for plain
//! HTTP; TLS plugs in here), and serves HTTP/1.1 and HTTP/2 on it with hyper.
//!
//! What a client cannot do any more (issue 9):
//! - hold a connection without sending a request: the first request must start within the
//!   header-read timeout, HTTP/1.1 headers must arrive within it (hyper's `header_read_timeout`,
//!   which also bounds the wait between kept-alive requests);
//! - keep an idle connection: with no request in flight for the idle timeout it is shut down
//!   gracefully (HTTP/2 gets a GOAWAY);
//! - stop reading a response: a write that makes no progress for the send timeout fails the
//!   connection ([`conn::Monitored`]);
//! - exhaust file descriptors: connections are capped, the soft `RLIMIT_NOFILE` is raised to the
//!   hard limit at start ([`raise_nofile_limit`]), and `EMFILE`/`ENFILE` on accept are logged
//!   (rate-limited) and retried after a short sleep instead of spinning.
//!
//! Request-body progress and the upload/download slots are the API's business (`crate::api`).
//! This module calls only the router it is given; it knows nothing of the registry.

mod conn;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_config::registry::Limits;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use self::conn::Tracker;

/// Turns an accepted TCP connection into the byte stream HTTP is spoken on.
///
/// The plain acceptor ([`Plain`]) hands the socket through; a TLS acceptor performs the
/// handshake. The accept loop bounds the future by the header-read timeout, so a client that
/// never finishes a handshake holds its slot no longer than one that never sends headers.
pub trait Acceptor: Clone + Send + Sync + 'static {
    /// The stream after acceptance.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The acceptance in progress.
    type Future: Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// Starts accepting `tcp`, a connection from `peer`.
    fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Self::Future;
}

/// Plain HTTP: the TCP stream as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Acceptor for Plain {
    type Stream = TcpStream;
    type Future = std::future::Ready<io::Result<TcpStream>>;

    fn accept(&self, tcp: TcpStream, _peer: SocketAddr) -> Self::Future {
        std::future::ready(Ok(tcp))
    }
}

/// The connection-level limits, in the units the loop uses.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client IP at most.
    pub max_connections_per_ip: usize,
    /// Time to send the first request, and each request's HTTP/1.1 headers.
    pub header_read_timeout: Duration,
    /// Time without a request in flight before a connection is shut down.
    pub idle_timeout: Duration,
    /// Time a write to the client may make no progress.
    pub send_timeout: Duration,
}

impl ServeLimits {
    /// The limits of a `[limits]` section, with `max_connections` lowered to fit `nofile`
    /// descriptors (when known) minus what the registry needs for files and uploads.
    #[must_use]
    pub fn from_config(l: &Limits, nofile: Option<u64>) -> Self {
        let mut max_connections = l.max_connections;
        let mut max_connections_per_ip = l.max_connections_per_ip;
        if let Some(n) = nofile {
            // Each upload and each download holds a file; keep 64 more for everything else.
            let reserve = 64 + l.max_concurrent_uploads + l.max_concurrent_downloads;
            let fit = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .saturating_sub(reserve)
                .max(16);
            if fit < max_connections {
                // Keep the per-address share: one client must not take every slot.
                max_connections_per_ip = (max_connections_per_ip * fit / max_connections).max(1);
                tracing::warn!(
                    configured = max_connections,
                    nofile = n,
                    max_connections = fit,
                    max_connections_per_ip,
                    "max_connections lowered to fit the open-file limit; raise `ulimit -Hn` to allow more"
                );
                max_connections = fit;
            }
        }
        Self {
            max_connections,
            max_connections_per_ip: max_connections_per_ip.min(max_connections),
            header_read_timeout: Duration::from_secs(l.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
            send_timeout: Duration::from_secs(l.send_timeout_secs),
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the resulting soft limit
/// (`None` when it cannot be read). Failing to raise it is logged, not fatal.
pub fn raise_nofile_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read RLIMIT_NOFILE");
            return None;
        }
    };
    if soft >= hard {
        tracing::info!(nofile = soft, "open-file limit");
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!(
                nofile = hard,
                was = soft,
                "raised the open-file limit to the hard limit"
            );
            Some(hard)
        }
        Err(e) => {
            tracing::warn!(nofile = soft, hard, error = %e, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

/// Logs an event at most once per interval, with how many happened since the last line.
pub(crate) struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    count: u64,
}

impl RateLimitedLog {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            count: 0,
        }
    }

    /// Counts one event; returns the count to log when the interval has passed.
    pub(crate) fn hit(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// Size of the runtime's blocking pool: the reads and writes `service::slots` admits (32 each)
/// and a few metadata calls.
pub const MAX_BLOCKING_THREADS: usize = 80;

/// Per-connection HTTP/1.1 buffer limit (also the largest request head accepted).
const HTTP1_MAX_BUF: usize = 64 * 1024;

/// How often refused connections and accept errors are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, shuts every
/// connection down gracefully and returns once they have all closed. The caller bounds that
/// wait (the grace period).
///
/// Each request carries `axum::extract::ConnectInfo<SocketAddr>` with the client's address.
///
/// # Errors
/// None so far: accept errors are logged and retried; the signature leaves room for fatal ones.
pub async fn serve<A: Acceptor>(
    listener: TcpListener,
    app: axum::Router,
    acceptor: A,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper's read buffer and write queue per connection (default ~400 KiB): a client that
        // stops reading pins at most this beyond the download chunks its slot accounts for.
        .max_buf_size(HTTP1_MAX_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout))
        .keep_alive_timeout(limits.send_timeout);
    let builder = Arc::new(builder);
    let tracker = Tracker::new(limits.max_connections, limits.max_connections_per_ip);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a clone; `recv` returns `None` once all of them are gone.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut refused_log = RateLimitedLog::new(LOG_EVERY);
    let mut accept_err_log = RateLimitedLog::new(LOG_EVERY);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    on_accept_error(&e, &mut accept_err_log).await;
                    continue;
                }
            },
        };
        let Some(slot) = tracker.admit(peer.ip()) else {
            // Past a cap: close at once with a reset, so the refusal costs no TIME_WAIT state.
            #[allow(deprecated)] // a zero linger never blocks
            let _ = tcp.set_linger(Some(Duration::ZERO));
            drop(tcp);
            if let Some(n) = refused_log.hit() {
                tracing::warn!(
                    refused = n,
                    open = tracker.open(),
                    max_connections = limits.max_connections,
                    max_connections_per_ip = limits.max_connections_per_ip,
                    last_client = %peer.ip(),
                    "refused connections past the connection caps"
                );
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let task = conn::ConnTask {
            builder: builder.clone(),
            app: app.clone(),
            peer,
            limits,
            stop: stop_rx.clone(),
            _alive: alive_tx.clone(),
            _slot: slot,
        };
        let accepting = acceptor.accept(tcp, peer);
        tokio::spawn(task.run(accepting));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

/// `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM`: the process or system is out of a resource, and
/// retrying at once would spin; sleep a little. Anything else (a connection reset before it
/// was accepted) is retried at once.
async fn on_accept_error(e: &io::Error, log: &mut RateLimitedLog) {
    let resource = matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    );
    if let Some(n) = log.hit() {
        if resource {
            tracing::error!(error = %e, errors = n, "accept failed: out of file descriptors or memory; retrying (raise `ulimit -n` or lower limits.max_connections)");
        } else {
            tracing::warn!(error = %e, errors = n, "accept failed; retrying");
        }
    }
    if resource {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_log_counts_between_lines() {
        let mut log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.hit(), Some(1));
        assert_eq!(log.hit(), None);
        assert_eq!(log.hit(), None);
        log.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(log.hit(), Some(3));
    }

    #[test]
    fn max_connections_fits_the_open_file_limit() {
        let l = Limits::default();
        let s = ServeLimits::from_config(&l, Some(1024));
        assert!(s.max_connections < 1024, "{s:?}");
        assert!(s.max_connections_per_ip < s.max_connections, "{s:?}");
        let s = ServeLimits::from_config(&l, Some(1 << 20));
        assert_eq!(s.max_connections, l.max_connections);
    }
}
