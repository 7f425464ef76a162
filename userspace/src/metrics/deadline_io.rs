//! A TCP stream whose every wait has an end, for the exporter's connections.
//!
//! hyper bounds the time to read a request head (`header_read_timeout`) but has no
//! deadline for writes: a client that asks for /metrics and never reads would hold its
//! connection for ever. This wrapper fails a write that makes no progress for
//! [`Limits::write_stall`], a response that is still being written [`Limits::response`]
//! after it started (a client reading one byte at a time), and a read that waits longer
//! than [`Limits::read_idle`] (a backstop; hyper's head timeout normally ends it first).
//! Every byte moved is recorded in [`Activity`], which the connection table uses to
//! evict the connection that has been quiet the longest.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub write_stall: Duration,
    pub response: Duration,
    pub read_idle: Duration,
}

/// When a connection last moved a byte, in ms since the server's start.
#[derive(Debug)]
pub struct Activity {
    epoch: std::time::Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new(epoch: std::time::Instant) -> Self {
        let a = Self {
            epoch,
            last_ms: AtomicU64::new(0),
        };
        a.touch();
        a
    }

    pub fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    pub fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }
}

pub struct DeadlineIo<T> {
    inner: T,
    limits: Limits,
    activity: Arc<Activity>,
    /// Set by the first write after a request was read; cleared by the next read.
    response_started: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
    read_timer: Option<Pin<Box<Sleep>>>,
}

impl<T> DeadlineIo<T> {
    pub fn new(inner: T, limits: Limits, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            limits,
            activity,
            response_started: None,
            write_timer: None,
            read_timer: None,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

/// Polls `timer` (created at `deadline` on first use): true once it has fired.
fn expired(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    sleep.as_mut().poll(cx).is_ready()
}

impl<T: AsyncWrite + Unpin> DeadlineIo<T> {
    /// Runs one write-side operation under the stall and response deadlines.
    fn write_op<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let now = Instant::now();
        let started = *self.response_started.get_or_insert(now);
        let response_deadline = started + self.limits.response;
        if now >= response_deadline {
            return Poll::Ready(Err(timed_out(
                "the client did not read the response in time",
            )));
        }
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Pending => {
                let deadline = (now + self.limits.write_stall).min(response_deadline);
                if expired(&mut self.write_timer, deadline, cx) {
                    self.write_timer = None;
                    return Poll::Ready(Err(timed_out("the client stopped reading")));
                }
                Poll::Pending
            }
            ready => {
                self.write_timer = None;
                self.activity.touch();
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                let deadline = Instant::now() + this.limits.read_idle;
                if expired(&mut this.read_timer, deadline, cx) {
                    this.read_timer = None;
                    return Poll::Ready(Err(timed_out("the client sent nothing")));
                }
                Poll::Pending
            }
            ready => {
                this.read_timer = None;
                if buf.filled().len() > before {
                    this.activity.touch();
                    this.response_started = None;
                }
                ready
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_op(cx, |io, cx| io.poll_write(cx, buf))
    }

    /// Vectored, so hyper queues the body's chunks and writes them as they are
    /// (without it hyper copies every chunk of a 12 MB scrape into its own buffer).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_op(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().write_op(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().write_op(cx, |io, cx| io.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SHORT: Limits = Limits {
        write_stall: Duration::from_millis(200),
        response: Duration::from_secs(5),
        read_idle: Duration::from_millis(200),
    };

    #[tokio::test]
    async fn a_peer_that_never_reads_fails_the_write() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut io = DeadlineIo::new(
            ours,
            SHORT,
            Arc::new(Activity::new(std::time::Instant::now())),
        );
        let err = io
            .write_all(&[0u8; 4096])
            .await
            .expect_err("a write into a full pipe must time out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_silent_peer_fails_the_read() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut io = DeadlineIo::new(
            ours,
            SHORT,
            Arc::new(Activity::new(std::time::Instant::now())),
        );
        let mut buf = [0u8; 8];
        let err = io.read(&mut buf).await.expect_err("must time out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn progress_is_recorded() {
        let epoch = std::time::Instant::now() - Duration::from_secs(10);
        let activity = Arc::new(Activity::new(epoch));
        let before = activity.last_ms();
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut io = DeadlineIo::new(ours, SHORT, activity.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
        io.write_all(b"hello").await.expect("write");
        let mut buf = [0u8; 5];
        theirs.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"hello");
        assert!(activity.last_ms() > before);
    }
}
