//! Prometheus exporter of per-link counters (`vethscope serve`, `trace --metrics`).
//!
//! The TC programs `count_ingress`/`count_egress` count packets and bytes per link,
//! direction and traffic class in a per-CPU map, and `drops_kfree_skb` counts drops
//! per link and reason; userspace only reads those maps when Prometheus scrapes.
//! - `watch`: keeps the programs attached to exactly the links that exist, listing
//!   them again when `changes` sees that something may have changed;
//! - `collector`: maps → metric families, at scrape time;
//! - `http` + `openmetrics`: `/metrics` (Prometheus text or OpenMetrics) and `/healthz`.

mod changes;
mod collector;
mod deadline_io;
mod error;
pub mod http;
mod impair;
mod links;
mod maps;
mod openmetrics;
mod render;
mod watch;

use std::{
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prometheus::Registry;
use tokio::task::JoinHandle;

pub use collector::{CLASS_NAMES, LinkCollector};
pub use error::MetricsError;
pub use links::{LinkId, LinkLabels, LinkTable};
pub use openmetrics::Format;
pub use watch::{Counting, Listing, Scope, SyncReport};

use crate::probe::{LoadOptions, Probe, Target};

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub scope: Scope,
    pub listen: SocketAddr,
    /// Time between looks for links that appeared or vanished.
    pub refresh: Duration,
}

/// The registry of the small families every endpoint serves (the per-link ones are
/// written by [`render::LinkRender`]).
fn registry(
    probe: &Probe,
    table: Arc<RwLock<LinkTable>>,
    with_trace: bool,
) -> Result<Registry, MetricsError> {
    let trace = if with_trace {
        Some(maps::TraceStats::open(probe.trace_stats_handle()?))
    } else {
        None
    };
    let impairments = impair::ImpairCollector::new(table.clone())?;
    let collector = LinkCollector::new(table, trace)?;
    let registry = Registry::new();
    registry
        .register(Box::new(collector))
        .map_err(|e| MetricsError::prometheus("registry", e))?;
    registry
        .register(Box::new(impairments))
        .map_err(|e| MetricsError::prometheus("registry", e))?;
    Ok(registry)
}

/// The writer of the per-link families: the counting and drop maps, the names of
/// this kernel's drop reasons.
fn link_render(
    probe: &Probe,
    table: Arc<RwLock<LinkTable>>,
) -> Result<render::LinkRender, MetricsError> {
    let reasons = crate::probe::btf::drop_reasons().unwrap_or_else(|e| {
        // Drops are still counted; they are just labelled by number.
        tracing::warn!("drop reasons will be numbers: {}", crate::errors::Chain(&e));
        Default::default()
    });
    render::LinkRender::open(
        probe.link_counters_fd()?,
        probe.drop_counters_fd()?,
        reasons,
        table,
    )
}

/// Hands heap pages freed since start-up back to the kernel. Parsing the kernel's BTF
/// (struct offsets, drop-reason names) and attaching allocate tens of MB that are free
/// afterwards but that glibc would keep mapped for the whole life of the exporter.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes every allocation of 1 MiB or more its own mapping, returned to the kernel when
/// freed. A scrape of 1,000 namespaces is ~12 MB of text; by default glibc raises its
/// mapping threshold after the first such buffer is freed and then keeps the next ones
/// in the heap for the life of the process (RSS +12–35 MB). The cost: the pages of
/// each scrape's buffer are faulted in again.
fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a threshold of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Aborts the HTTP server when dropped, on every exit path.
struct ServerTask(JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets `stop` on SIGINT or SIGTERM, and wakes the waiter.
fn on_signal(stop: Arc<AtomicBool>, wake: Arc<tokio::sync::Notify>) -> Result<(), MetricsError> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
        stop.store(true, Ordering::Relaxed);
        wake.notify_one();
    });
    Ok(())
}

/// `vethscope serve`: counts on the links of `opts.scope` and serves them until
/// SIGINT/SIGTERM. Every attachment is a fd of this process, so all detach on return.
pub async fn serve(opts: &ServeOptions) -> Result<(), MetricsError> {
    map_large_buffers();
    let listener = http::bind(opts.listen, "--listen").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(tokio::sync::Notify::new());
    on_signal(stop.clone(), wake.clone())?;

    let mut probe = Probe::load(LoadOptions::default())?;
    let named = match &opts.scope {
        Scope::Labs(labs) => labs.clone(),
        Scope::All => Vec::new(),
    };
    let table = Arc::new(RwLock::new(LinkTable::new(named)));
    let mut counting = Counting::new(&mut probe, table.clone())?;
    let links = link_render(&probe, table.clone())?;
    let server = ServerTask(http::spawn_with_links(
        listener,
        registry(&probe, table, false)?,
        Some(links),
    )?);
    release_freed_memory();
    status_line(format_args!(
        "serving http://{}/metrics for {} (links checked every {:.1} s) — Ctrl-C to stop",
        opts.listen,
        match &opts.scope {
            Scope::Labs(labs) => format!("lab {}", labs.join(", lab ")),
            Scope::All => "every veth of this host".to_string(),
        },
        opts.refresh.as_secs_f64()
    ));

    let mut tick = tokio::time::interval(opts.refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = changes::Changes::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tick.tick() => {
                if !changes.due() {
                    continue;
                }
                let started = std::time::Instant::now();
                let listing = watch::list(&opts.scope).await;
                tracing::debug!("{} links listed in {:?}", listing.targets.len(), started.elapsed());
                if !listing.unsure.is_empty() {
                    changes.retry();
                }
                let r = counting.sync(&mut probe, listing, &stop);
                if r.failed > 0 {
                    changes.retry();
                }
                if r.added + r.removed > 0 {
                    tracing::info!(
                        "counting on {} links (+{} -{}, {} failed)",
                        counting.len(), r.added, r.removed, r.failed
                    );
                }
                // A listing of 1,000 namespaces allocates several MB on the pool's
                // threads, freed when it ends but kept by their malloc arenas.
                release_freed_memory();
            }
            _ = wake.notified() => {}
        }
    }
    // Stop answering first: the links are about to go. Then detach (it would happen at
    // exit anyway; this keeps the order explicit: programs, then the probe and its maps).
    drop(server);
    let started = std::time::Instant::now();
    let links = counting.len();
    counting.detach_all(true);
    tracing::info!("detached from {links} links in {:?}", started.elapsed());
    drop(counting);
    drop(probe);
    Ok(())
}

/// The exporter inside another command (`trace --metrics`): counts on a fixed set of
/// targets in the caller's probe, serving until dropped.
pub struct Exporter {
    _counting: Counting,
    _server: ServerTask,
}

impl Exporter {
    pub async fn start(
        probe: &mut Probe,
        targets: &[Target],
        lab: Option<&str>,
        addr: SocketAddr,
    ) -> Result<Self, MetricsError> {
        let listener = http::bind(addr, "--metrics").await?;
        let table = Arc::new(RwLock::new(LinkTable::new(lab.map(str::to_string))));
        let mut counting = Counting::new(probe, table.clone())?;
        let listing = Listing {
            targets: targets.to_vec(),
            unsure: Default::default(),
        };
        let r = counting.sync(probe, listing, &AtomicBool::new(false));
        if r.failed > 0 {
            tracing::warn!("counting on {} of {} links", r.added, targets.len());
        }
        let links = link_render(probe, table.clone())?;
        let server = ServerTask(http::spawn_with_links(
            listener,
            registry(probe, table, true)?,
            Some(links),
        )?);
        release_freed_memory();
        Ok(Self {
            _counting: counting,
            _server: server,
        })
    }
}

/// A status line of `serve` for the terminal (stderr; stdout stays free for output).
#[allow(
    clippy::print_stderr,
    reason = "the status lines of a long-running command, for whoever watches the terminal"
)]
fn status_line(line: std::fmt::Arguments<'_>) {
    eprintln!("vethscope: {line}");
}
