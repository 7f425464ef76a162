//! The built-in scenarios, in demo order.

use clap::ValueEnum;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Direct,
    Bridge,
    Ovs,
    OvsInternal,
    SameNs,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::Direct,
        Scenario::Bridge,
        Scenario::Ovs,
        Scenario::OvsInternal,
        Scenario::SameNs,
    ];

    /// The name `vethscope up/trace/show/down` takes.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Direct => "direct",
            Scenario::Bridge => "bridge",
            Scenario::Ovs => "ovs",
            Scenario::OvsInternal => "ovs-internal",
            Scenario::SameNs => "same-ns",
        }
    }

    /// The chosen scenarios in built-in order, each once; all of them when none was chosen.
    pub fn selected(chosen: &[Scenario]) -> Vec<Scenario> {
        Self::ALL
            .into_iter()
            .filter(|scenario| chosen.is_empty() || chosen.contains(scenario))
            .collect()
    }
}
