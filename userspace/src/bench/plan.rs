//! What to measure and in which order: the wirings, and the interleaved schedule
//! (round 1: A B C, round 2: A B C, ...) so slow drift of the machine hits every
//! wiring alike instead of whichever ran last.

use super::BenchError;

/// One way of joining the two namespaces.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Wiring {
    Direct,
    Bridge,
    Ovs,
    OvsInternal,
    FastPath,
    OvsFastPath,
}

impl Wiring {
    pub const ALL: [Wiring; 6] = [
        Wiring::Direct,
        Wiring::Bridge,
        Wiring::Ovs,
        Wiring::OvsInternal,
        Wiring::FastPath,
        Wiring::OvsFastPath,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Wiring::Direct => "direct",
            Wiring::Bridge => "bridge",
            Wiring::Ovs => "ovs",
            Wiring::OvsInternal => "ovs-internal",
            Wiring::FastPath => "fast-path",
            Wiring::OvsFastPath => "ovs-fast-path",
        }
    }

    /// The built-in scenario the lab is made from.
    pub fn scenario(self) -> &'static str {
        match self {
            Wiring::Direct => "direct",
            Wiring::Bridge | Wiring::FastPath => "bridge",
            Wiring::Ovs | Wiring::OvsFastPath => "ovs",
            Wiring::OvsInternal => "ovs-internal",
        }
    }

    /// True when the eBPF fast path is enabled on top of the scenario.
    pub fn fast_path(self) -> bool {
        matches!(self, Wiring::FastPath | Wiring::OvsFastPath)
    }

    pub fn parse(name: &str) -> Result<Self, BenchError> {
        Self::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| BenchError::UnknownWiring {
                name: name.to_string(),
                known: Self::ALL.map(Wiring::name).join(", "),
            })
    }

    /// One `--wirings` value (clap splits the list at commas).
    pub fn parse_arg(name: &str) -> Result<Self, BenchError> {
        Self::parse(name.trim())
    }

    /// A comma-separated list, in the order given; repeats are dropped.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, BenchError> {
        let all = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::unique(&all)
    }

    /// The wirings in the order given, repeats dropped; at least one.
    pub fn unique(list: &[Self]) -> Result<Vec<Self>, BenchError> {
        let mut out = Vec::new();
        for w in list {
            if !out.contains(w) {
                out.push(*w);
            }
        }
        if out.is_empty() {
            return Err(BenchError::Config("--wirings names no wiring".into()));
        }
        Ok(out)
    }
}

impl std::fmt::Display for Wiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything `bench` was asked to do.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct BenchConfig {
    pub wirings: Vec<Wiring>,
    /// Seconds per iperf3 run.
    pub duration_s: f64,
    /// Parallel TCP streams of the multi-stream run.
    pub streams: u32,
    pub rounds: u32,
    pub udp: bool,
    pub overhead: bool,
    /// Prefix of every lab, namespace and root-namespace object the bench makes.
    pub prefix: String,
    /// Round trips per latency probe (after the warm-up).
    pub round_trips: u32,
    /// Payload of each latency probe message, bytes.
    pub message_bytes: usize,
    /// The CPU both latency probe threads are bound to (`None`: not bound).
    pub latency_cpu: Option<usize>,
}

impl BenchConfig {
    pub fn check(&self) -> Result<(), BenchError> {
        if !(self.duration_s.is_finite() && self.duration_s >= 1.0 && self.duration_s <= 3600.0) {
            return Err(BenchError::Config(format!(
                "--duration must be between 1 and 3600 seconds (iperf3 counts whole seconds), not {}",
                self.duration_s
            )));
        }
        if self.streams == 0 || self.streams > 128 {
            return Err(BenchError::Config(format!(
                "--streams must be between 1 and 128, not {}",
                self.streams
            )));
        }
        if self.rounds == 0 || self.rounds > 1000 {
            return Err(BenchError::Config(format!(
                "--rounds must be between 1 and 1000, not {}",
                self.rounds
            )));
        }
        if self.prefix.len() > 6 {
            return Err(BenchError::Config(format!(
                "--prefix '{}' is longer than 6 characters (interface names would exceed 15)",
                self.prefix
            )));
        }
        if self.message_bytes < 8 {
            return Err(BenchError::Config(
                "latency messages must hold at least 8 bytes (the sequence number)".into(),
            ));
        }
        Ok(())
    }

    /// Whole seconds for iperf3 `-t` (it takes an integer).
    pub fn iperf_seconds(&self) -> u64 {
        self.duration_s.round().max(1.0) as u64
    }

    /// The measurement order: (round, wiring), wirings interleaved round by round.
    pub fn schedule(&self) -> Vec<(u32, Wiring)> {
        (1..=self.rounds)
            .flat_map(|r| self.wirings.iter().map(move |w| (r, *w)))
            .collect()
    }

    /// The lab name a wiring's scenario gets with our prefix.
    pub fn lab_name(&self, w: Wiring) -> String {
        format!("{}{}", self.prefix, w.scenario())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(wirings: &str, rounds: u32) -> BenchConfig {
        BenchConfig {
            wirings: Wiring::parse_list(wirings).expect("valid list"),
            duration_s: 1.0,
            streams: 2,
            rounds,
            udp: false,
            overhead: false,
            prefix: "vsb-".into(),
            round_trips: 100,
            message_bytes: 64,
            latency_cpu: None,
        }
    }

    #[test]
    fn schedule_interleaves_rounds() {
        let c = config("direct,bridge,direct,fast-path", 2);
        let order: Vec<String> = c
            .schedule()
            .iter()
            .map(|(r, w)| format!("{r}{w}"))
            .collect();
        assert_eq!(
            order,
            [
                "1direct",
                "1bridge",
                "1fast-path",
                "2direct",
                "2bridge",
                "2fast-path"
            ]
        );
        assert_eq!(c.lab_name(Wiring::FastPath), "vsb-bridge");
        assert!(c.check().is_ok());
    }

    #[test]
    fn bad_lists_and_settings_are_refused() {
        assert!(matches!(
            Wiring::parse_list("direct,veth"),
            Err(BenchError::UnknownWiring { .. })
        ));
        assert!(Wiring::parse_list(" , ").is_err());
        let mut c = config("direct", 1);
        c.duration_s = 0.5;
        assert!(c.check().is_err());
        c.duration_s = 2.0;
        c.prefix = "much-too-long-".into();
        assert!(c.check().is_err());
    }
}
