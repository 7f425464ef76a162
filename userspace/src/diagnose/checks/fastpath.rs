//! FASTPATH_MISSING_MAC: the lab's eBPF fast path is on, but its forwarding table
//! (pinned `FASTPATH_FDB`, keyed by bridge domain, VLAN and MAC) has no entry for an
//! end of the path — a MAC changed or a port came after `fastpath enable`. Frames to
//! it then take the bridge: the path works, slower than the user thinks, so the
//! finding is advisory.

use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use vethscope_common::{FdbEntry, FdbKey, names::map};

use crate::diagnose::finding::{Code, Finding, Findings, Fix};
use crate::diagnose::live::Live;
use crate::diagnose::walk::{IfRef, PathPlan};
use crate::topology::HOST;

/// The (domain, MAC) pairs of the table, or why it cannot be read.
fn table(lab: &str) -> Result<Vec<(u32, [u8; 6])>, String> {
    let path = crate::fastpath::pin_dir(lab).join(map::FASTPATH_FDB);
    let data = MapData::from_pin(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = Map::from_map_data(data).map_err(|e| e.to_string())?;
    let fdb: BpfHashMap<MapData, FdbKey, FdbEntry> = m.try_into().map_err(|e| format!("{e}"))?;
    Ok(fdb
        .iter()
        .filter_map(Result::ok)
        .map(|(k, _)| (k.domain, k.mac))
        .collect())
}

/// Checks both ends of the path (the destination for requests, the source for
/// replies) that sit behind a bridge port the fast path serves.
pub fn table_has_path_ends(live: &Live, plan: &PathPlan, out: &mut Findings) {
    if !crate::fastpath::is_enabled(&live.lab) {
        return;
    }
    let ends: Vec<&IfRef> = plan
        .forward
        .hops
        .first()
        .into_iter()
        .chain(plan.forward.reached.as_ref())
        .collect();
    let entries = match table(&live.lab) {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!("fast-path table of {}: {e}", live.lab);
            return;
        }
    };
    for end in ends {
        let Some(link) = live.link(&end.netns, &end.ifname) else {
            continue;
        };
        // Served ends only: a lab namespace's veth whose peer is a root-namespace port.
        let Some(port) = link
            .peer
            .as_ref()
            .filter(|p| p.netns == HOST)
            .and_then(|p| live.link(&p.netns, &p.name))
        else {
            continue;
        };
        let (Some(master), Some(mac_text)) = (&port.master, &link.mac) else {
            continue;
        };
        let Some(mac) = crate::topology::parse_mac(mac_text) else {
            continue;
        };
        let domain = crate::fastpath::domain_of(master.kind.as_str(), &master.name);
        if entries.iter().any(|(d, m)| *d == domain && *m == mac) {
            continue;
        }
        out.push(
            Finding::new(
                Code::FastpathMissingMac,
                &link.netns,
                &link.name,
                format!(
                    "the fast path of lab {} is on, but its table for bridge {} lacks the MAC of {}/{} ({mac_text}): frames to it take the bridge (the path works, without the fast path)",
                    live.lab, master.name, link.netns, link.name
                ),
                format!(
                    "no entry for (bridge {}, MAC {mac_text}) among the {} entries of {}",
                    master.name,
                    entries.len(),
                    map::FASTPATH_FDB
                ),
                // Advice, not run by --fix: it refreshes the whole lab's table.
                Some(Fix::advice(format!(
                    "vethscope fastpath enable {} (refreshes the table from live state)",
                    live.lab
                ))),
            )
            .advisory(),
        );
    }
}
