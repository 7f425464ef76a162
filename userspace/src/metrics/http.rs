//! The exporter's HTTP server: hyper's HTTP/1.1 for `/metrics` and `/healthz`, GET
//! only, keep-alive (a Prometheus server reuses its connection between scrapes).
//!
//! Every wait is bounded, because any local user can connect:
//! - request heads: at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields (hyper
//!   answers 431 beyond), read within [`HEAD_TIMEOUT`] — which also ends keep-alive
//!   connections idle for that long (hyper restarts the timer for each request);
//! - writes: see [`DeadlineIo`] (a client that stops reading loses its connection);
//! - connections: at most [`MAX_CONNECTIONS`]; one more evicts the connection that has
//!   moved no byte for the longest time, so idle or stuck clients cannot lock out a
//!   scraper, and the number of tasks never exceeds the cap;
//! - scrapes: queued to one thread (bounded queue), and requests waiting together
//!   share one scrape. The thread only reads the counters; each connection writes
//!   its own copy of the text as it sends it (`render::SnapshotBody`), so a slow
//!   client holds one snapshot of the counters, not megabytes of text.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{
    Method, Request, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::Registry;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::{AbortHandle, JoinHandle, JoinSet},
};

use super::{
    MetricsError,
    deadline_io::{Activity, DeadlineIo, Limits},
    openmetrics::Format,
    render::{LinkRender, Snapshot},
};

/// Body of every answer: a short static text or a scrape written while it is sent.
pub type MetricsBody = BoxBody<Bytes, Infallible>;

/// Largest request head (Prometheus sends a few hundred bytes; hyper's minimum is 8 KiB).
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
/// Connections served at once; one more evicts the quietest.
pub const MAX_CONNECTIONS: usize = 128;
/// Time to send a request head, and the longest a keep-alive connection stays idle
/// (Prometheus scrapes every 15 s by default and reconnects when it finds it closed).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(20);
pub const LIMITS: Limits = Limits {
    write_stall: Duration::from_secs(5),
    response: Duration::from_secs(30),
    read_idle: Duration::from_secs(60),
};

/// Binds the listening socket: done first, so a taken port fails before anything is
/// attached, with a sentence that names the option to change.
pub async fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| MetricsError::listen(addr, flag, e))
}

/// Serves `registry` on `listener` until the returned task is aborted.
pub fn spawn(listener: TcpListener, registry: Registry) -> std::io::Result<JoinHandle<()>> {
    spawn_with_links(listener, registry, None)
}

/// [`spawn`], with the per-link families written by `links` ahead of the registry's.
pub fn spawn_with_links(
    listener: TcpListener,
    registry: Registry,
    links: Option<LinkRender>,
) -> std::io::Result<JoinHandle<()>> {
    let scraper = Arc::new(Scraper::start_with_links(registry, links)?);
    Ok(tokio::spawn(accept_loop(listener, scraper)))
}

/// The live connections, with what eviction needs: how to end each, and when it last
/// moved a byte.
#[derive(Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, (AbortHandle, Arc<Activity>)>,
}

impl Table {
    /// Ends the connection that has been quiet the longest.
    fn evict_quietest(&mut self) {
        let quietest = self
            .live
            .iter()
            .min_by_key(|(_, (_, a))| a.last_ms())
            .map(|(id, _)| *id);
        if let Some((handle, _)) = quietest.and_then(|id| self.live.remove(&id)) {
            handle.abort();
        }
    }
}

/// Takes a connection out of the table when its task ends, however it ends.
struct Leave(Arc<Mutex<Table>>, u64);

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.0).live.remove(&self.1);
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    // Every update is one insert or remove: a panic elsewhere cannot leave it torn.
    table.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, scraper: Arc<Scraper>) {
    let epoch = Instant::now();
    let table = Arc::new(Mutex::new(Table::default()));
    // Connections live in this set, so aborting the server ends them too.
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of fds or similar: back off instead of spinning.
                tracing::warn!("metrics server: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let activity = Arc::new(Activity::new(epoch));
        // Held across spawn and insert, so the task's `Leave` cannot run before the
        // insert and leave a dead entry behind.
        let mut t = lock(&table);
        while t.live.len() >= MAX_CONNECTIONS {
            t.evict_quietest();
        }
        let id = t.next_id;
        t.next_id += 1;
        let (table2, scraper) = (table.clone(), scraper.clone());
        let handle = tasks.spawn({
            let activity = activity.clone();
            async move {
                // Made on the first poll: a task dropped unpolled (runtime shutting
                // down) must not take this lock inside `spawn`.
                let _leave = Leave(table2, id);
                connection(stream, scraper, activity).await;
            }
        });
        t.live.insert(id, (handle, activity));
    }
}

async fn connection(stream: TcpStream, scraper: Arc<Scraper>, activity: Arc<Activity>) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(DeadlineIo::new(stream, LIMITS, activity));
    let service = service_fn(move |req: Request<Incoming>| {
        let scraper = scraper.clone();
        async move { Ok::<_, std::convert::Infallible>(route(&req, &scraper).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        // A client may shut down its sending side and wait for the answer (as
        // `printf 'GET …' | nc -N` does): answer it rather than drop the request.
        .half_close(true)
        .serve_connection(io, service)
        .await;
    if let Err(e) = served {
        tracing::debug!("metrics connection ended: {e}");
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<MetricsBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The answer to one request. Public for the fuzz tests, which feed it arbitrary
/// methods, paths and `Accept` headers.
pub async fn route<B>(req: &Request<B>, scraper: &Scraper) -> Response<MetricsBody> {
    if req.method() != Method::GET {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        // A body we do not read is not drained: end the connection after the answer.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            // A header that is not text cannot name a format we know: the default.
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            match scraper.scrape(format).await {
                Ok(scraped) => {
                    let body = match scraped {
                        Scraped::Text(text) => Full::new(text).boxed(),
                        // Its exact length is known: hyper sends a Content-Length.
                        Scraped::Counters(snap) => snap.body().boxed(),
                    };
                    let mut r = Response::new(body);
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(format.content_type()),
                    );
                    r
                }
                Err(ScrapeError::Busy) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many scrapes waiting\n",
                ),
                Err(ScrapeError::Failed(e)) => {
                    tracing::warn!("cannot produce the metrics: {e}");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot produce the metrics\n",
                    )
                }
            }
        }
        "/healthz" => text(StatusCode::OK, "ok"),
        _ => text(StatusCode::NOT_FOUND, "not found (try /metrics)\n"),
    }
}

#[derive(Debug)]
pub enum ScrapeError {
    /// The queue is full (more waiting scrapes than connections allowed).
    Busy,
    Failed(String),
}

/// What one scrape produced, shared by every request it answers.
#[derive(Clone)]
pub enum Scraped {
    /// The registry's text alone (no per-link families).
    Text(Bytes),
    /// The per-link counters at one instant, with the registry's text as their tail.
    Counters(Arc<Snapshot>),
}

impl Scraped {
    fn len(&self) -> u64 {
        match self {
            Scraped::Text(t) => t.len() as u64,
            Scraped::Counters(s) => s.len(),
        }
    }
}

type Job = (Format, oneshot::Sender<Result<Scraped, String>>);

/// Scrapes run on one long-lived thread: each holds every series in memory at once,
/// so concurrent scrapes would multiply the peak, and on changing threads (the
/// blocking pool) each would leave its own malloc arena holding a scrape's worth of
/// freed memory. Reading the maps is thousands of syscalls, so it stays off the async
/// workers too. Requests that queued up while a scrape ran are answered by one scrape
/// per format, so a burst of requests costs at most two scrapes, not one each.
pub struct Scraper {
    jobs: mpsc::SyncSender<Job>,
}

impl Scraper {
    pub fn start(registry: Registry) -> std::io::Result<Self> {
        Self::start_with_links(registry, None)
    }

    pub fn start_with_links(
        registry: Registry,
        links: Option<LinkRender>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(MAX_CONNECTIONS);
        std::thread::Builder::new()
            .name("vethscope-scrape".into())
            .spawn(move || {
                // Ends when the server (every sender) is gone.
                let mut links = links;
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter());
                    answer(&registry, links.as_mut(), batch);
                    // Each scrape's snapshot (~200 bytes a link) and the chunks the
                    // connections wrote are freed by now; hand the pages back rather
                    // than let every thread's arena keep its share.
                    let t0 = std::time::Instant::now();
                    super::release_freed_memory();
                    tracing::trace!("malloc_trim after a scrape: {:?}", t0.elapsed());
                }
            })?;
        Ok(Self { jobs })
    }

    pub async fn scrape(&self, format: Format) -> Result<Scraped, ScrapeError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send((format, reply)).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => ScrapeError::Busy,
            mpsc::TrySendError::Disconnected(_) => {
                ScrapeError::Failed("the scrape thread has stopped".into())
            }
        })?;
        answer
            .await
            .map_err(|_| ScrapeError::Failed("the scrape thread has stopped".into()))?
            .map_err(ScrapeError::Failed)
    }
}

/// One scrape: the per-link families first (OpenMetrics ends with the registry's
/// `# EOF`).
fn scrape(
    registry: &Registry,
    links: Option<&mut LinkRender>,
    format: Format,
) -> Result<Scraped, String> {
    let t0 = std::time::Instant::now();
    let rest = Bytes::from(format.encode(&registry.gather())?);
    let registry_took = t0.elapsed();
    let scraped = match links {
        None => Scraped::Text(rest),
        Some(links) => Scraped::Counters(links.snapshot(format, rest)?),
    };
    tracing::debug!(
        "scrape: registry {registry_took:?}, per-link counters {:?}",
        t0.elapsed() - registry_took
    );
    Ok(scraped)
}

/// One scrape per format asked for in `batch`, sent to every asker.
fn answer(registry: &Registry, mut links: Option<&mut LinkRender>, batch: Vec<Job>) {
    let mut scraped: HashMap<Format, Result<Scraped, String>> = HashMap::new();
    for (format, reply) in batch {
        if reply.is_closed() {
            continue;
        }
        let one = scraped
            .entry(format)
            .or_insert_with(|| {
                let t0 = std::time::Instant::now();
                let one = scrape(registry, links.as_deref_mut(), format);
                tracing::debug!(
                    "scrape: counters for {} bytes of {format:?} read in {:?}",
                    one.as_ref().map_or(0, Scraped::len),
                    t0.elapsed()
                );
                one
            })
            .clone();
        let _ = reply.send(one);
    }
}
