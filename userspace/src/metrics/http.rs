//! A small HTTP/1.1 server for `/metrics` and `/healthz`: GET only, keep-alive (a
//! Prometheus server reuses its connection between scrapes), bounded request heads and
//! connection count, and a timeout on idle connections. Hand-written because the
//! exporter needs two fixed routes, not a web framework.

use std::{
    net::SocketAddr,
    sync::{Arc, mpsc},
    time::Duration,
};

use prometheus::Registry;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, oneshot},
    task::JoinHandle,
};

use super::{MetricsError, openmetrics::Format};

/// Larger request heads are refused (Prometheus sends a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more get 503 and are closed.
const MAX_CONNECTIONS: usize = 64;
/// An idle keep-alive connection is closed after this long (Prometheus reconnects).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Binds the listening socket: done first, so a taken port fails before anything is
/// attached, with a sentence that names the option to change.
pub async fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| MetricsError::listen(addr, flag, &e))
}

/// Serves `registry` on `listener` until the returned task is aborted.
pub fn spawn(listener: TcpListener, registry: Registry) -> std::io::Result<JoinHandle<()>> {
    let scraper = Arc::new(Scraper::start(registry)?);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    Ok(tokio::spawn(async move {
        // Connections live in this set, so aborting the server ends them too.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of fds or similar: back off instead of spinning.
                    tracing::warn!("metrics server: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let scraper = scraper.clone();
            match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    connections.spawn(async move {
                        connection(stream, &scraper).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    tracing::debug!("metrics server: too many connections, refusing {peer}");
                    connections.spawn(async move {
                        let mut stream = stream;
                        let _ = respond(&mut stream, &Response::text(503, "busy\n"), true).await;
                    });
                }
            }
        }
    }))
}

type Job = (Format, oneshot::Sender<Result<String, String>>);

/// Scrapes run one at a time on one long-lived thread: each holds every series in
/// memory at once, so concurrent scrapes would multiply the peak, and on changing
/// threads (the blocking pool) each would leave its own malloc arena holding a
/// scrape's worth of freed memory. Reading the maps is thousands of syscalls, so it
/// stays off the async workers too.
struct Scraper {
    jobs: mpsc::Sender<Job>,
}

impl Scraper {
    fn start(registry: Registry) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("vethscope-scrape".into())
            .spawn(move || {
                // Ends when the server (every sender) is gone.
                for (format, reply) in queue {
                    let t0 = std::time::Instant::now();
                    let families = registry.gather();
                    let t1 = std::time::Instant::now();
                    let body = format.encode(&families);
                    tracing::debug!(
                        "scrape: {} series gathered in {:?}, {} bytes of {format:?} in {:?}",
                        families.iter().map(|f| f.get_metric().len()).sum::<usize>(),
                        t1 - t0,
                        body.as_ref().map_or(0, String::len),
                        t1.elapsed()
                    );
                    let _ = reply.send(body);
                }
            })?;
        Ok(Self { jobs })
    }

    async fn scrape(&self, format: Format) -> Result<String, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((format, reply))
            .map_err(|_| "the scrape thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the scrape thread has stopped".to_string())?
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    accept: Option<String>,
    /// The client asked to close (or speaks HTTP/1.0), or sent a body we do not read.
    close: bool,
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

async fn connection(mut stream: TcpStream, scraper: &Scraper) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let head = match tokio::time::timeout(IDLE_TIMEOUT, read_head(&mut stream, &mut buf)).await
        {
            Ok(Ok(Some(head))) => head,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(status)) => {
                let _ = respond(&mut stream, &Response::text(status, "bad request\n"), true).await;
                return;
            }
        };
        let (response, close) = match parse(&head) {
            Ok(req) => (route(&req, scraper).await, req.close),
            Err(status) => (Response::text(status, "bad request\n"), true),
        };
        if respond(&mut stream, &response, close).await.is_err() || close {
            return;
        }
    }
}

/// Reads one request head (up to the blank line); bytes after it stay in `buf` for
/// the next request. `Ok(None)`: the client closed the connection between requests.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, u16> {
    loop {
        if let Some(end) = find_head_end(buf) {
            let head = buf[..end].to_vec();
            buf.drain(..end);
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        let mut chunk = [0u8; 2048];
        match stream.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Ok(None),
        }
    }
}

/// End of the head, blank line included; tolerates bare LF line ends.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse(head: &[u8]) -> Result<Request, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(400);
    }
    let mut close = version == "HTTP/1.0";
    let mut accept = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "accept" => accept = Some(value.to_string()),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
            // We never read request bodies; a request that has one ends the connection
            // so its body is not taken for the next request.
            "content-length" if value != "0" => close = true,
            "transfer-encoding" => close = true,
            _ => {}
        }
    }
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(Request {
        method: method.to_string(),
        path,
        accept,
        close,
    })
}

async fn route(req: &Request, scraper: &Scraper) -> Response {
    if req.method != "GET" {
        return Response::text(405, "only GET is supported\n");
    }
    match req.path.as_str() {
        "/metrics" => {
            let format = Format::negotiate(req.accept.as_deref());
            match scraper.scrape(format).await {
                Ok(body) => Response {
                    status: 200,
                    content_type: format.content_type(),
                    body,
                },
                Err(e) => {
                    tracing::warn!("cannot produce the metrics: {e}");
                    Response::text(500, "cannot produce the metrics\n")
                }
            }
        }
        "/healthz" => Response::text(200, "ok"),
        _ => Response::text(404, "not found (try /metrics)\n"),
    }
}

async fn respond(stream: &mut TcpStream, r: &Response, close: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    if r.status == 405 {
        head.push_str("Allow: GET\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(r.body.as_bytes()).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_prometheus_scrape() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nAccept: application/openmetrics-text;version=1.0.0\r\nUser-Agent: Prometheus/2.42.0\r\n\r\n";
        let req = parse(head).unwrap_or_else(|s| panic!("status {s}"));
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/metrics");
        assert_eq!(
            req.accept.as_deref(),
            Some("application/openmetrics-text;version=1.0.0")
        );
        assert!(!req.close);
    }

    #[test]
    fn http10_and_bodies_close_the_connection() {
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").is_ok_and(|r| r.close));
        assert!(
            parse(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n").is_ok_and(|r| r.close)
        );
        assert!(parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").is_ok_and(|r| r.close));
        assert_eq!(parse(b"nonsense\r\n\r\n"), Err(400));
        assert_eq!(parse(b"GET / SPDY/3\r\n\r\n"), Err(400));
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
