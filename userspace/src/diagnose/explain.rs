//! The diagnose engine inside `trace`: an unanswered path gets the findings of the
//! static checks for its (first namespace, destination) pair — one engine, two faces.

use std::time::{Duration, Instant};

use super::finding::{Finding, Findings};
use super::live::Live;
use super::{checks, walk::Engine};
use crate::trace::paths::{Path, Verdict};

/// Live state is read again when older than this (the lab may be fixed meanwhile).
const REFRESH: Duration = Duration::from_secs(2);

pub struct Explainer {
    lab: String,
    live: Option<(Instant, Live)>,
}

impl Explainer {
    pub fn new(lab: &str) -> Self {
        Self {
            lab: lab.to_string(),
            live: None,
        }
    }

    /// Findings for an unanswered path (none for answered ones, or when the lab's state
    /// cannot be read: the trace goes on without them).
    pub async fn findings(&mut self, p: &Path) -> Vec<Finding> {
        if p.verdict != Verdict::Unanswered {
            return Vec::new();
        }
        let Some(first) = p.request.first() else {
            return Vec::new();
        };
        let stale = self
            .live
            .as_ref()
            .is_none_or(|(t, _)| t.elapsed() >= REFRESH);
        if stale {
            match Live::gather(&self.lab).await {
                Ok(l) => self.live = Some((Instant::now(), l)),
                Err(e) => {
                    tracing::debug!("no diagnosis for the path: {}", crate::errors::Chain(&e));
                    return Vec::new();
                }
            }
        }
        let Some((_, live)) = &self.live else {
            return Vec::new();
        };
        let from = first.netns.to_string();
        let mut out = Findings::default();
        checks::placement::missing_and_misplaced(live, &mut out);
        checks::placement::bridge_ports(live, &mut out);
        checks::placement::ovs_ports(live, &mut out);
        let mut engine = Engine::new(live);
        if let Err(e) = engine.check_pair(&from, p.dst, &mut out).await {
            tracing::debug!("no diagnosis for the path: {}", crate::errors::Chain(&e));
        }
        checks::placement::duplicates(live, &mut out, &[p.dst, p.src]);
        out.into_vec()
    }
}
