//! Text and JSON output of a diagnosis (the JSON format is in docs/diagnose.md).

use std::fmt::Write as _;

use super::probe::ProbeReport;
use super::{PairReport, Report};

/// `diagnose --json --from/--to`: the one pair, with the lab and the time taken.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct PairDocument<'a> {
    #[serde(flatten)]
    pub pair: &'a PairReport,
    pub lab: &'a str,
    #[schemars(range(min = 0.0))]
    pub elapsed_ms: f64,
}

/// JSON: one pair → the pair object with `lab` and `elapsed_ms`; several → the report.
/// Both go through `serde_json::Value`, whose objects sort their members.
pub fn json(r: &Report, single: bool) -> String {
    let value = if single && r.pairs.len() == 1 {
        serde_json::to_value(PairDocument {
            pair: &r.pairs[0],
            lab: &r.lab,
            elapsed_ms: round(r.elapsed_ms),
        })
        .unwrap_or(serde_json::Value::Null)
    } else {
        let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("elapsed_ms".into(), round(r.elapsed_ms).into());
        }
        v
    };
    value.to_string()
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

pub fn text(r: &Report, single: bool) -> String {
    let mut s = String::new();
    if !single {
        let _ = writeln!(
            s,
            "lab {}: checked {} of {} endpoint pairs{}",
            r.lab,
            r.pairs_checked,
            r.pairs_total,
            if r.pairs_checked < r.pairs_total {
                " (use --from/--to, or --max-pairs, for the others)"
            } else {
                ""
            }
        );
    }
    for p in &r.pairs {
        pair_text(&mut s, &r.lab, p);
    }
    let bad = r.pairs.iter().filter(|p| !p.ok).count();
    let findings: usize = r.pairs.iter().map(|p| p.findings.len()).sum();
    let _ = writeln!(
        s,
        "verdict: {} ({:.0} ms)",
        if r.ok {
            if r.pairs.is_empty() {
                "no endpoint pairs to check".to_string()
            } else {
                "healthy".to_string()
            }
        } else {
            format!(
                "{findings} finding{} on {bad} of {} path{}",
                if findings == 1 { "" } else { "s" },
                r.pairs.len(),
                if r.pairs.len() == 1 { "" } else { "s" }
            )
        },
        r.elapsed_ms
    );
    s
}

fn pair_text(s: &mut String, lab: &str, p: &PairReport) {
    let _ = writeln!(
        s,
        "{} {lab}: {} → {}",
        if p.ok { "OK  " } else { "FAIL" },
        p.from,
        p.to
    );
    if !p.path.is_empty() {
        let _ = writeln!(s, "  path:   {}", p.path.join(" → "));
    }
    if !p.return_path.is_empty() {
        let _ = writeln!(s, "  back:   {}", p.return_path.join(" → "));
    }
    for f in &p.findings {
        let _ = writeln!(s, "  {} {}: {}", f.code, f.object(), f.message);
        let _ = writeln!(s, "      evidence: {}", f.evidence);
        if let Some(fix) = &f.fix {
            let _ = writeln!(s, "      fix: {fix}");
        }
    }
    if let Some(probe) = &p.probe {
        probe_text(s, probe);
    }
    if let Some(a) = &p.agreement {
        let _ = writeln!(
            s,
            "  {}",
            if a == "agree" {
                "static checks and probe agree".to_string()
            } else {
                a.clone()
            }
        );
    }
}

fn probe_text(s: &mut String, r: &ProbeReport) {
    let bound = r
        .bound_to
        .as_ref()
        .map(|b| format!(" out {b}"))
        .unwrap_or_default();
    if r.answered {
        let _ = writeln!(
            s,
            "  probe:  {}{bound} answered in {:.3} ms",
            r.kind,
            r.rtt_ms.unwrap_or(0.0)
        );
    } else {
        let _ = writeln!(
            s,
            "  probe:  {}{bound} UNANSWERED, last seen at {}{}",
            r.kind,
            r.last_seen.as_deref().unwrap_or("nowhere"),
            r.error
                .as_ref()
                .map(|e| format!(" (send failed: {e})"))
                .unwrap_or_default()
        );
    }
    if !r.request.is_empty() {
        let _ = writeln!(s, "          request {}", compact(&r.request));
    }
    if !r.reply.is_empty() {
        let _ = writeln!(
            s,
            "          reply   {}{}",
            compact(&r.reply),
            if r.reply_via_lo {
                " (over lo: the destination is local to the sender's namespace)"
            } else {
                ""
            }
        );
    }
    for n in &r.neighbour {
        let what = if n.proto == "arp" {
            format!("ARP who-has {} tell {}", n.target, n.asker)
        } else {
            format!("ND solicitation for {} from {}", n.target, n.asker)
        };
        let tries = if n.attempts > 1 {
            format!(", {} attempts", n.attempts)
        } else {
            String::new()
        };
        if n.answered {
            let _ = writeln!(s, "          {what}: answered{tries}");
        } else {
            let _ = writeln!(
                s,
                "          {what}: UNANSWERED{tries}, last seen at {}",
                n.last_seen.as_deref().unwrap_or("nowhere")
            );
        }
    }
    for d in &r.drops {
        let _ = writeln!(
            s,
            "          dropped at {}/{}: {} — {} ({})",
            d.netns, d.ifname, d.packet, d.meaning, d.reason
        );
    }
    if let Some(m) = &r.mtu_probe {
        let _ = writeln!(
            s,
            "          {}-byte probe with DF: {}{}",
            m.size,
            if m.answered { "answered" } else { "UNANSWERED" },
            m.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
}

/// `a egress, b ingress, …` with a place that repeats collapsed into one.
fn compact(hops: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for h in hops {
        if out.last() != Some(&h.as_str()) {
            out.push(h);
        }
    }
    out.join(" → ")
}
