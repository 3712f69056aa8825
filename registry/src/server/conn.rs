//! One connection: its slot under the caps, its watchdog (no first request, idle, responses
//! that stopped moving), and a stream wrapper that fails a write the client does not take
//! within the send timeout.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::ServeLimits;

/// Counts open connections, in total and per client IP.
#[derive(Clone)]
pub(super) struct Tracker(Arc<TrackerInner>);

struct TrackerInner {
    max: usize,
    max_per_ip: usize,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under the caps; released on drop.
pub(super) struct Slot {
    tracker: Tracker,
    ip: IpAddr,
}

impl Tracker {
    pub(super) fn new(max: usize, max_per_ip: usize) -> Self {
        Self(Arc::new(TrackerInner {
            max,
            max_per_ip,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        }))
    }

    pub(super) fn open(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// A slot for a new connection from `ip`, or `None` past a cap.
    pub(super) fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let inner = &self.0;
        if inner.open.load(Ordering::Relaxed) >= inner.max {
            return None;
        }
        let mut per_ip = inner.per_ip.lock().expect("tracker lock");
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= inner.max_per_ip {
            return None;
        }
        *n += 1;
        inner.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            tracker: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let inner = &self.tracker.0;
        inner.open.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = inner.per_ip.lock().expect("tracker lock");
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Requests in flight on one connection (until their response body is done), and when the
/// last one ended.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    started: AtomicUsize,
    last_end: Mutex<Option<Instant>>,
    /// Response bodies being sent, and when one of them last yielded a frame.
    bodies: AtomicUsize,
    last_progress: Mutex<Option<Instant>>,
}

impl Activity {
    fn progressed(&self) {
        *self.last_progress.lock().expect("activity lock") = Some(Instant::now());
    }
}

/// A response body being sent: counted until dropped.
struct BodyGuard(Arc<Activity>);

impl BodyGuard {
    fn new(a: &Arc<Activity>) -> Self {
        a.bodies.fetch_add(1, Ordering::Relaxed);
        a.progressed();
        Self(a.clone())
    }
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        self.0.bodies.fetch_sub(1, Ordering::Relaxed);
    }
}

struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        a.started.fetch_add(1, Ordering::Relaxed);
        Self(a.clone())
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        *self.0.last_end.lock().expect("activity lock") = Some(Instant::now());
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything a connection task needs.
pub(super) struct ConnTask {
    pub(super) builder: Arc<auto::Builder<TokioExecutor>>,
    pub(super) app: axum::Router,
    pub(super) peer: SocketAddr,
    pub(super) limits: ServeLimits,
    pub(super) stop: tokio::sync::watch::Receiver<bool>,
    /// Held so that the accept loop knows when every connection has closed.
    pub(super) _alive: tokio::sync::mpsc::Sender<()>,
    /// Released when the task ends.
    pub(super) _slot: Slot,
}

impl ConnTask {
    pub(super) async fn run<S, F>(mut self, accepting: F)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: Future<Output = io::Result<S>> + Send,
    {
        let accepted_at = Instant::now();
        let stream = match tokio::time::timeout(self.limits.header_read_timeout, accepting).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(client = %self.peer, error = %e, "connection not accepted");
                return;
            }
            Err(_) => {
                tracing::debug!(client = %self.peer, "connection accept timed out");
                return;
            }
        };
        let activity = Arc::new(Activity::default());
        let (app, peer, act) = (self.app.clone(), self.peer, activity.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = RequestGuard::new(&act);
            let call = app.clone().oneshot(req.map(Body::new));
            async move {
                let resp = call.await?;
                let sending = BodyGuard::new(&guard.0);
                Ok::<_, Infallible>(resp.map(|body| {
                    // The request counts as in flight until its body is sent or dropped, and
                    // each frame the connection takes is progress.
                    Body::new(body.map_frame(move |f| {
                        let _request = &guard;
                        sending.0.progressed();
                        f
                    }))
                }))
            }
        });
        let io = TokioIo::new(Monitored::new(stream, self.limits.send_timeout));
        let conn = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let limits = self.limits;
        let mut graceful_since: Option<Instant> = None;
        let mut check = tokio::time::interval(Duration::from_millis(500).min(limits.idle_timeout));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(client = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stop.changed(), if graceful_since.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    graceful_since = Some(Instant::now());
                }
                _ = check.tick() => {
                    let now = Instant::now();
                    if let Some(t) = graceful_since {
                        // A client that ignores the shutdown keeps nothing longer than this;
                        // the process-wide grace period still applies on SIGTERM.
                        if now.duration_since(t) > limits.idle_timeout.max(limits.send_timeout)
                            && !*self.stop.borrow()
                        {
                            return;
                        }
                        continue;
                    }
                    if activity.started.load(Ordering::Relaxed) == 0 {
                        if now.duration_since(accepted_at) > limits.header_read_timeout {
                            tracing::debug!(client = %self.peer, "no request within the header-read timeout; closing");
                            return;
                        }
                        continue;
                    }
                    if activity.bodies.load(Ordering::Relaxed) > 0 {
                        // Responses are being sent but none has moved for the send timeout: an
                        // HTTP/2 client that never opens its window, say (HTTP/1.1 writes that
                        // stall are caught by `Monitored`). Drop the connection and its slots.
                        let last = activity.last_progress.lock().expect("activity lock").unwrap_or(now);
                        if now.duration_since(last) > limits.send_timeout {
                            tracing::debug!(client = %self.peer, "responses made no progress within the send timeout; closing");
                            return;
                        }
                        continue;
                    }
                    if activity.in_flight.load(Ordering::Relaxed) > 0 {
                        continue;
                    }
                    let last = activity.last_end.lock().expect("activity lock").unwrap_or(accepted_at);
                    if now.duration_since(last) > limits.idle_timeout {
                        conn.as_mut().graceful_shutdown();
                        graceful_since = Some(now);
                    }
                }
            }
        }
    }
}

/// A stream whose writes fail with `TimedOut` when they make no progress for `send_timeout`:
/// a client that stops reading loses its connection instead of pinning buffers and slots.
pub(crate) struct Monitored<S> {
    inner: S,
    send_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> Monitored<S> {
    pub(crate) fn new(inner: S, send_timeout: Duration) -> Self {
        Self {
            inner,
            send_timeout,
            stalled: None,
        }
    }

    /// After the inner write returned `Pending`: starts or checks the stall timer.
    fn pending_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.send_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client did not read the response within the send timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
        }
        r
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Monitored<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Monitored<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending_write(cx),
            r => self.progress(r),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending_write(cx),
            r => self.progress(r),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending_write(cx).map_ok(|_| ()),
            r => self.progress(r),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_ip() {
        let t = Tracker::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = t.admit(a).unwrap();
        let _s2 = t.admit(a).unwrap();
        assert!(t.admit(a).is_none(), "per-IP cap");
        let _s3 = t.admit(b).unwrap();
        assert!(t.admit(b).is_none(), "total cap");
        drop(s1);
        let _s4 = t.admit(b).expect("a slot was freed");
        assert_eq!(t.open(), 3);
    }

    #[tokio::test]
    async fn a_stalled_write_times_out() {
        use tokio::io::AsyncWriteExt;
        let (a, _b) = tokio::io::duplex(16);
        let mut m = Monitored::new(a, Duration::from_millis(100));
        let err = m.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
