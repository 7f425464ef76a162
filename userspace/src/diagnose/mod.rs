//! `vethscope diagnose`: why a path fails, where, and the command that fixes it.
//!
//! One engine, two faces: static checks on live state (a walk that follows the
//! kernel's own routing decisions through the lab, see [`walk`]) and an active probe (a
//! ping traced with the same TC programs as `trace`, plus `skb:kfree_skb`, see
//! [`probe`]). `trace` uses the same engine for its unanswered paths.

pub mod checks;
pub mod explain;
pub mod finding;
pub mod fix;
pub mod live;
pub mod pairs;
mod ping;
pub mod probe;
pub mod render;
pub mod subnet;
pub mod walk;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use finding::{Code, Finding, Findings};
pub use live::Live;
use walk::{Engine, IfRef};

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error("namespace {netns} is not part of lab {lab} (its namespaces: {known})")]
    NoSuchNamespace {
        netns: String,
        lab: String,
        known: String,
    },
}

impl DiagnoseError {
    /// Errors in what the user typed (exit code 2), as opposed to failures.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DiagnoseError::NoSuchNamespace { .. }
                | DiagnoseError::Inspect(crate::inspect::InspectError::NoSuchLab { .. })
        )
    }
}

#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    pub lab: String,
    /// Source namespace and destination address; None = every pair of the lab.
    pub pair: Option<(String, IpAddr)>,
    pub probe: bool,
    /// How long the probe waits for each reply.
    pub probe_timeout: Duration,
    /// At most this many pairs without --from/--to.
    pub max_pairs: usize,
}

/// The verdict for one pair.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PairReport {
    pub ok: bool,
    pub from: String,
    pub to: IpAddr,
    /// Interfaces on the way there, as the static walk found them.
    #[schemars(with = "Vec<crate::schemas::wire::IfRef>")]
    pub path: Vec<String>,
    /// Interfaces on the way back.
    #[schemars(with = "Vec<crate::schemas::wire::IfRef>")]
    pub return_path: Vec<String>,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<probe::ProbeReport>,
    /// "agree", or "disagree: …" when the probe and the static checks differ;
    /// absent without a probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::Agreement>")]
    pub agreement: Option<String>,
}

/// The whole answer of one `diagnose` run.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub ok: bool,
    pub lab: String,
    /// Pairs the topology implies, and how many were checked (without --from/--to).
    pub pairs_total: usize,
    pub pairs_checked: usize,
    pub pairs: Vec<PairReport>,
    #[schemars(range(min = 0.0))]
    pub elapsed_ms: f64,
}

fn refs(v: &[IfRef]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// Runs the diagnosis.
pub async fn run(opts: &DiagnoseOptions) -> Result<Report, DiagnoseError> {
    let t0 = Instant::now();
    let live = Live::gather(&opts.lab).await?;
    tracing::debug!(ms = t0.elapsed().as_secs_f64() * 1e3, "live state gathered");
    let (pairs, total) = match &opts.pair {
        Some((from, to)) => {
            if !live.has_netns(from) {
                return Err(DiagnoseError::NoSuchNamespace {
                    netns: from.clone(),
                    lab: opts.lab.clone(),
                    known: live
                        .view
                        .namespaces
                        .iter()
                        .map(|n| n.name.as_str())
                        .chain(std::iter::once(crate::topology::HOST))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            (vec![(from.clone(), *to)], 1)
        }
        None => pairs::endpoint_pairs(&live, opts.max_pairs),
    };
    let mut engine = Engine::new(&live);
    let mut session = if opts.probe && !pairs.is_empty() {
        let t = Instant::now();
        let s = probe::Session::start(&live)?;
        tracing::debug!(
            ms = t.elapsed().as_secs_f64() * 1e3,
            "probe programs loaded"
        );
        Some(s)
    } else {
        None
    };
    let mut reports = Vec::new();
    for (from, to) in &pairs {
        let mut findings = Findings::default();
        checks::placement::missing_and_misplaced(&live, &mut findings);
        checks::placement::bridge_ports(&live, &mut findings);
        checks::placement::ovs_ports(&live, &mut findings);
        let t = Instant::now();
        let plan = engine.check_pair(from, *to, &mut findings).await?;
        tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, %from, %to, "static checks");
        let src = plan.forward.src;
        checks::placement::duplicates(
            &live,
            &mut findings,
            &[Some(*to), src].into_iter().flatten().collect::<Vec<_>>(),
        );
        let static_ok = findings.is_empty();
        let (probe_report, agreement) = match session.as_mut() {
            Some(s) => {
                let t = Instant::now();
                let r = s.run(&live, from, *to, &plan, opts.probe_timeout)?;
                tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "probe");
                let agreement = probe::agree(static_ok, &r, &mut findings, from);
                (Some(r), Some(agreement))
            }
            None => (None, None),
        };
        let findings = findings.into_vec();
        reports.push(PairReport {
            ok: findings.is_empty(),
            from: from.clone(),
            to: *to,
            path: refs(&plan.forward.hops),
            return_path: refs(&plan.back.hops),
            findings,
            probe: probe_report,
            agreement,
        });
    }
    Ok(Report {
        ok: reports.iter().all(|r| r.ok),
        lab: opts.lab.clone(),
        pairs_total: total,
        pairs_checked: reports.len(),
        pairs: reports,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1000.0,
    })
}
