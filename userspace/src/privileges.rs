//! One clear sentence when a capability is missing, instead of a failure deep inside.

/// Linux capability numbers (linux/capability.h).
#[derive(Clone, Copy, Debug)]
pub enum Cap {
    NetAdmin = 12,
    SysAdmin = 21,
    Bpf = 39,
    Perfmon = 38,
}

impl Cap {
    fn name(self) -> &'static str {
        match self {
            Cap::NetAdmin => "CAP_NET_ADMIN",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
            Cap::Bpf => "CAP_BPF",
            Cap::Perfmon => "CAP_PERFMON",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{command}` needs {missing}, which this process lacks (fix: run vethscope as root, e.g. `sudo vethscope {command} ...`)"
)]
pub struct MissingCapability {
    pub command: String,
    pub missing: String,
}

fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Fails with one sentence naming every missing capability.
pub fn require(command: &str, caps: &[Cap]) -> Result<(), MissingCapability> {
    let eff = effective_caps();
    let missing: Vec<&str> = caps
        .iter()
        .filter(|c| eff & (1u64 << (**c as u32)) == 0)
        .map(|c| c.name())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingCapability {
            command: command.to_string(),
            missing: match missing.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            },
        })
    }
}
