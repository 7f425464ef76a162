//! What tracing and counting cost: the bridge wiring measured bare, with
//! `vethscope trace LAB --json` running, and with `vethscope serve LAB` running, the
//! variants alternating (bare, trace, count; next round reversed) on one lab per round.
//! The tools run as child processes of our own binary, exactly as a user runs them.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use super::{
    BenchConfig, BenchError, Progress,
    lab::{self, LabGuard},
    measure_lab,
    plan::Wiring,
    report::{OverheadResult, Sample, Variant, VariantResult},
};
use crate::topology::Topology;

/// A running trace or serve; stopped with SIGINT (then SIGKILL) by [`Attached::stop`],
/// killed if dropped.
struct Attached {
    child: Child,
    what: String,
}

impl Attached {
    async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("{} did not stop on SIGINT; killing it", self.what);
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

fn tool(exe: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Keeps reading a child's stderr (so it never blocks on a full pipe), remembering the
/// last lines for error messages.
fn drain(stderr: ChildStderr, tail: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(mut t) = tail.lock() {
                t.push(l);
                let excess = t.len().saturating_sub(5);
                t.drain(..excess);
            }
        }
    });
}

fn last(tail: &Arc<Mutex<Vec<String>>>) -> String {
    tail.lock()
        .ok()
        .and_then(|t| t.last().cloned())
        .unwrap_or_default()
}

/// Starts `vethscope trace LAB --json > /dev/null` and waits for "tracing" on stderr.
async fn attach_trace(exe: &Path, lab: &str) -> Result<Attached, BenchError> {
    let what = format!("`vethscope trace {lab}`");
    let mut child = tool(exe, &["trace", lab, "--json"])
        .spawn()
        .map_err(|source| BenchError::Spawn {
            what: what.clone(),
            source,
        })?;
    let Some(stderr) = child.stderr.take() else {
        return Err(BenchError::Probe {
            what,
            detail: "no stderr pipe".into(),
        });
    };
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match lines.next_line().await {
                Ok(Some(l)) if l.contains("tracing") => return true,
                Ok(Some(l)) => seen.push(l),
                _ => return false,
            }
        }
    })
    .await;
    match started {
        Ok(true) => {
            drain(lines.into_inner().into_inner(), Arc::default());
            Ok(Attached { child, what })
        }
        Ok(false) => {
            let _ = child.wait().await;
            Err(BenchError::Probe {
                what,
                detail: format!(
                    "exited before attaching: {}",
                    seen.last().map(String::as_str).unwrap_or("(no message)")
                ),
            })
        }
        Err(_) => Err(BenchError::Timeout {
            what: format!("{what} attaching"),
            secs: 30.0,
        }),
    }
}

/// Why counting could not be measured.
enum CountUnavailable {
    /// `serve` does not work here (not built yet in this branch, or fails): skip
    /// counting for every round.
    Skip(String),
    /// It started but this attempt failed.
    Failed(BenchError),
}

/// Starts `vethscope serve LAB --listen 127.0.0.1:PORT` and waits until /healthz answers
/// and /metrics names the lab's client namespace.
async fn attach_count(exe: &Path, lab: &str, netns: &str) -> Result<Attached, CountUnavailable> {
    let what = format!("`vethscope serve {lab}`");
    let port =
        free_port().map_err(|e| CountUnavailable::Failed(BenchError::io("pick a port", e)))?;
    let listen = format!("127.0.0.1:{port}");
    let mut child = tool(
        exe,
        &["serve", lab, "--listen", &listen, "--refresh", "0.5"],
    )
    .spawn()
    .map_err(|source| CountUnavailable::Skip(format!("cannot start {what}: {source}")))?;
    let tail: Arc<Mutex<Vec<String>>> = Arc::default();
    if let Some(stderr) = child.stderr.take() {
        drain(stderr, tail.clone());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Let the drain task read the last words.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(CountUnavailable::Skip(format!(
                "{what} exited ({status}): {}",
                last(&tail)
            )));
        }
        if !healthy {
            healthy = http_get(port, "/healthz")
                .await
                .is_some_and(|(code, _)| code == 200);
        }
        if healthy
            && let Some((200, body)) = http_get(port, "/metrics").await
            && body.contains(netns)
        {
            return Ok(Attached { child, what });
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(CountUnavailable::Skip(format!(
                "{what} did not serve counters of namespace {netns} within 30 s{}",
                if healthy { " (/healthz answered)" } else { "" }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A minimal HTTP/1.0 GET: status code and body, or `None` when nothing answers.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((code, body))
    };
    tokio::time::timeout(Duration::from_secs(3), fetch)
        .await
        .ok()
        .flatten()
}

/// Runs the overhead comparison; never fails as a whole (failures are in the result).
pub async fn run(cfg: &BenchConfig, exe: &Path, progress: &Progress<'_>) -> OverheadResult {
    let lab_name = cfg.lab_name(Wiring::Bridge);
    let mut samples: [(Variant, Vec<Sample>); 3] = [
        (Variant::Bare, Vec::new()),
        (Variant::Trace, Vec::new()),
        (Variant::Count, Vec::new()),
    ];
    let mut count_skipped: Option<String> = None;
    let topo = Topology::load(Wiring::Bridge.scenario())
        .map(|t| t.with_prefix(&cfg.prefix))
        .map_err(BenchError::from)
        .and_then(|t| lab::endpoints(&t).map(|e| (t, e)));
    for round in 1..=cfg.rounds {
        let mut order = [Variant::Bare, Variant::Trace, Variant::Count];
        if round % 2 == 0 {
            order.reverse();
        }
        let failed = |e: &BenchError| Sample {
            round,
            error: Some(crate::errors::Chain(e).to_string()),
            ..Default::default()
        };
        let (topo, ep) = match &topo {
            Ok(x) => x,
            Err(e) => {
                for (_, s) in samples.iter_mut() {
                    s.push(failed(e));
                }
                continue;
            }
        };
        progress(&format!("[overhead {round}/{}] bridge: lab up", cfg.rounds));
        let guard = match LabGuard::up(topo, false).await {
            Ok(g) => g,
            Err(e) => {
                progress(&format!(
                    "[overhead {round}/{}] failed: {}",
                    cfg.rounds,
                    crate::errors::Chain(&e)
                ));
                for (_, s) in samples.iter_mut() {
                    s.push(failed(&e));
                }
                continue;
            }
        };
        for v in order {
            if v == Variant::Count && count_skipped.is_some() {
                continue;
            }
            let mut sample = Sample {
                round,
                ..Default::default()
            };
            let attached = match v {
                Variant::Bare => Ok(None),
                Variant::Trace => attach_trace(exe, guard.name()).await.map(Some),
                Variant::Count => match attach_count(exe, guard.name(), &ep.client_ns).await {
                    Ok(a) => Ok(Some(a)),
                    Err(CountUnavailable::Skip(why)) => {
                        progress(&format!("counting skipped: {why}"));
                        count_skipped = Some(why);
                        continue;
                    }
                    Err(CountUnavailable::Failed(e)) => Err(e),
                },
            };
            match attached {
                Ok(a) => {
                    if let Err(e) = measure_lab(cfg, ep, &mut sample, false).await {
                        sample.error = Some(crate::errors::Chain(&e).to_string());
                    }
                    if let Some(a) = a {
                        a.stop().await;
                    }
                }
                Err(e) => sample.error = Some(crate::errors::Chain(&e).to_string()),
            }
            progress(&format!(
                "[overhead {round}/{}] {}: {}",
                cfg.rounds,
                v.name(),
                super::sample_line(&sample)
            ));
            if let Some((_, s)) = samples.iter_mut().find(|(k, _)| *k == v) {
                s.push(sample);
            }
        }
        if let Err(e) = guard.release().await {
            progress(&format!(
                "removing lab {lab_name} failed: {}",
                crate::errors::Chain(&e)
            ));
        }
    }
    let variants = samples
        .into_iter()
        .map(|(v, s)| {
            let skipped = if v == Variant::Count && s.is_empty() {
                count_skipped.clone()
            } else {
                None
            };
            VariantResult::new(v, s, skipped)
        })
        .collect();
    OverheadResult::new(lab_name, variants)
}
