//! A lab made for one measurement and always removed afterwards: on success through
//! [`LabGuard::release`], on an error, a panic or Ctrl-C (the measuring future is
//! dropped) through `Drop`, which removes it on a thread of its own.

use std::net::Ipv4Addr;

use super::BenchError;
use crate::{
    fastpath,
    topology::{HOST, Topology},
    wire::{self, UpOptions, UpOutcome},
};

pub struct LabGuard {
    lab: String,
    fast_path: bool,
    armed: bool,
}

impl LabGuard {
    /// Makes the lab (and enables the fast path when asked). On failure nothing of the
    /// lab is left.
    pub async fn up(topo: &Topology, fast_path: bool) -> Result<Self, BenchError> {
        // Armed before `up` starts: if this future is dropped half-way, Drop removes
        // whatever was made.
        let mut guard = LabGuard {
            lab: topo.name.clone(),
            fast_path: false,
            armed: true,
        };
        match wire::up(topo, &UpOptions::default()).await {
            Ok(UpOutcome::Created { .. }) => {}
            Ok(UpOutcome::AlreadyUp | UpOutcome::Changed { .. } | UpOutcome::Planned { .. }) => {
                // Not ours to remove.
                guard.armed = false;
                return Err(BenchError::Lab {
                    lab: topo.name.clone(),
                    message: format!(
                        "is already up (another bench running?) (fix: `vethscope down {}`, or use another --prefix)",
                        topo.name
                    ),
                });
            }
            Err(e) => {
                // `up` removes what it made when it fails.
                guard.armed = false;
                return Err(e.into());
            }
        }
        if fast_path {
            guard.fast_path = true;
            if let Err(e) = fastpath::enable(&topo.name).await {
                if let Err(down) = guard.release().await {
                    tracing::warn!("{down}");
                }
                return Err(e.into());
            }
        }
        Ok(guard)
    }

    pub fn name(&self) -> &str {
        &self.lab
    }

    /// Removes the lab.
    pub async fn release(mut self) -> Result<(), BenchError> {
        self.armed = false;
        teardown(&self.lab, self.fast_path).await
    }
}

/// Fast path off (when it was on), then the lab down. Absent objects are success.
pub async fn teardown(lab: &str, fast_path: bool) -> Result<(), BenchError> {
    if fast_path && let Err(e) = fastpath::disable(lab).await {
        tracing::debug!("fast path of {lab}: {}", crate::errors::Chain(&e));
    }
    wire::down(lab).await?;
    Ok(())
}

impl Drop for LabGuard {
    #[allow(
        clippy::print_stderr,
        reason = "a guard's drop has no caller to return an error to; `bench` runs on a terminal"
    )]
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let (lab, fast_path) = (self.lab.clone(), self.fast_path);
        eprintln!("vethscope: removing lab {lab}");
        // We may be inside the async runtime (a dropped future): run the removal on a
        // thread with a runtime of its own and wait for it.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime to remove lab {lab}: {e}"))?;
            rt.block_on(teardown(&lab, fast_path))
                .map_err(|e| crate::errors::Chain(&e).to_string())
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("vethscope: {e}"),
            Err(_) => eprintln!("vethscope: removing lab {} failed", self.lab),
        }
    }
}

/// Where the measurement runs: client and server namespaces and the server address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub client_ns: String,
    pub server_ns: String,
    pub server_ip: Ipv4Addr,
}

/// The first two interfaces in lab namespaces with an IPv4 address, in different
/// namespaces, in file order: client, then server (ns1 → ns2 in the built-ins).
pub fn endpoints(topo: &Topology) -> Result<Endpoints, BenchError> {
    let mut found: Vec<(String, Ipv4Addr)> = Vec::new();
    for end in topo.ends() {
        let ns = end.netns();
        if ns == HOST || found.iter().any(|(n, _)| n == ns) {
            continue;
        }
        if let Some(ip) = end.addresses.iter().find_map(|c| match c.addr {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        }) {
            found.push((ns.to_string(), ip));
        }
    }
    match found.as_slice() {
        [(client_ns, _), (server_ns, server_ip), ..] => Ok(Endpoints {
            client_ns: client_ns.clone(),
            server_ns: server_ns.clone(),
            server_ip: *server_ip,
        }),
        _ => Err(BenchError::Lab {
            lab: topo.name.clone(),
            message: "needs two namespaces with an IPv4 address each".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_builtins() {
        for scenario in ["direct", "bridge", "ovs", "ovs-internal"] {
            let t = Topology::load(scenario)
                .expect("built-in")
                .with_prefix("vsb-");
            assert_eq!(
                endpoints(&t).expect("endpoints"),
                Endpoints {
                    client_ns: "vsb-ns1".into(),
                    server_ns: "vsb-ns2".into(),
                    server_ip: Ipv4Addr::new(10, 1, 1, 3),
                },
                "{scenario}"
            );
        }
        let same = Topology::load("same-ns").expect("built-in");
        assert!(endpoints(&same).is_err());
    }
}
