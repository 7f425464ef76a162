//! Whole-machine CPU use from /proc/stat: busy jiffies over all jiffies between two
//! snapshots, as a percentage of all CPUs together (100 % = every CPU busy).

use super::BenchError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// user + nice + system + irq + softirq + steal.
    pub busy: u64,
    /// busy + idle + iowait.
    pub total: u64,
}

impl CpuSnapshot {
    pub fn now() -> Result<Self, BenchError> {
        let text = std::fs::read_to_string("/proc/stat")
            .map_err(|e| BenchError::io("read /proc/stat", e))?;
        Self::parse(&text).ok_or_else(|| BenchError::Probe {
            what: "read /proc/stat".into(),
            detail: "no aggregate `cpu` line".into(),
        })
    }

    /// Parses the aggregate `cpu` line (guest time is already inside user and nice).
    pub fn parse(stat: &str) -> Option<Self> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        if v.len() < 4 {
            return None;
        }
        let field = |i: usize| v.get(i).copied().unwrap_or(0);
        let idle = field(3) + field(4);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        Some(CpuSnapshot {
            busy,
            total: busy + idle,
        })
    }

    /// Percent of all CPUs busy between `self` (earlier) and `later`.
    pub fn percent_until(&self, later: &CpuSnapshot) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let busy = later.busy.checked_sub(self.busy)?;
        (total > 0).then(|| 100.0 * busy as f64 / total as f64)
    }
}

/// Online CPUs (for the report).
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_between_snapshots() {
        let a =
            CpuSnapshot::parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n").expect("parses");
        assert_eq!(
            a,
            CpuSnapshot {
                busy: 150,
                total: 1000
            }
        );
        let b = CpuSnapshot::parse("cpu  200 0 100 1000 50 25 25 0 0 0\n").expect("parses");
        // busy 350 - 150 = 200 of total 1400 - 1000 = 400.
        assert_eq!(a.percent_until(&b), Some(50.0));
        assert_eq!(a.percent_until(&a), None);
        assert!(CpuSnapshot::parse("intr 1 2 3\n").is_none());
    }
}
