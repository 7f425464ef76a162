//! `link LAB NS/IFNAME down|up|flap`: both ends of a veth go down together, like a
//! pulled cable (an OVS internal port has one end).

use std::time::{Duration, Instant};

use super::{EndRef, ImpairError, resolve_in};
use crate::{inspect, netlink::Netlink};

/// The interfaces whose admin state was changed, as `ns/ifname`.
pub async fn set(lab: &str, end: &EndRef, up: bool) -> Result<Vec<String>, ImpairError> {
    let view = inspect::lab_view(lab).await?;
    let live = resolve_in(&view, lab, end)?;
    let mut ends = vec![(
        live.target.netns.clone(),
        live.target.ifname.clone(),
        live.target.ifindex,
    )];
    if let Some(peer) = live.peer {
        ends.push(peer);
    }
    let mut changed = Vec::new();
    for (ns, ifname, ifindex) in &ends {
        let nl = Netlink::open(ns).await?;
        nl.set_admin(ifname, *ifindex, up).await?;
        changed.push(format!("{ns}/{ifname}"));
    }
    Ok(changed)
}

/// One step of a flap, for the caller to print as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlapStep {
    /// Time since the flap began.
    pub at: Duration,
    pub up: bool,
    pub round: u32,
}

/// Takes the link down for `down`, up for `up`, `count` times; ends up.
pub async fn flap(
    lab: &str,
    end: &EndRef,
    down: Duration,
    up: Duration,
    count: u32,
    mut on_step: impl FnMut(&FlapStep),
) -> Result<(), ImpairError> {
    let start = Instant::now();
    for round in 1..=count {
        set(lab, end, false).await?;
        on_step(&FlapStep {
            at: start.elapsed(),
            up: false,
            round,
        });
        tokio::time::sleep(down).await;
        set(lab, end, true).await?;
        on_step(&FlapStep {
            at: start.elapsed(),
            up: true,
            round,
        });
        if round < count {
            tokio::time::sleep(up).await;
        }
    }
    Ok(())
}
