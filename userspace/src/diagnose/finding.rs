//! What diagnose reports: a finding is one fault on one object, with the value that
//! proves it and the command that fixes it.

use serde::Serialize;

/// Every finding code, with the one-line meaning documented in docs/diagnose.md.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// An interface on the path is administratively down.
    LinkDown,
    /// `lo` is down in a namespace whose traffic needs it.
    LoDown,
    /// An interface the lab defines does not exist.
    MissingInterface,
    /// A veth's peer is not where the lab puts it.
    WrongPlacement,
    /// A bridge port is not attached to any bridge.
    BridgePortDetached,
    /// A bridge port is attached to another bridge than the lab says.
    BridgePortWrongBridge,
    /// STP keeps a bridge port from forwarding.
    StpBlocking,
    /// OVS reports the port's interface unusable (ofport -1 or an error).
    OvsPortError,
    /// The source namespace has no address to send from.
    NoSourceAddress,
    /// The kernel of the source (or a router) has no route to the destination.
    NoRoute,
    /// No interface in the lab has the destination address.
    NoSuchAddress,
    /// The destination is in the lab, but not on the link the route leads to.
    WrongSubnet,
    /// An address is configured more than once in the lab.
    DuplicateAddress,
    /// A router namespace on the path does not forward.
    ForwardingOff,
    /// The destination (or a router) has no route back to the source.
    NoReturnRoute,
    /// Interfaces on the path have different MTUs.
    MtuMismatch,
    /// Same-namespace pair: the receiving end drops packets from a local source.
    AcceptLocal,
    /// Reverse-path filtering drops the packets.
    RpFilter,
    /// arp_ignore keeps the destination from answering ARP.
    ArpIgnore,
    /// arp_filter keeps the destination from answering ARP on this interface.
    ArpFilter,
    /// arp_announce / arp_ignore together suppress the reply.
    ArpAnnounce,
    /// The fast path is on but its table lacks the destination's MAC.
    FastpathMissingMac,
    /// The probe got no answer although no static check explains why.
    ProbeUnanswered,
    /// The small probe was answered but a full-size one with DF set was not.
    ProbeMtu,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::LinkDown => "LINK_DOWN",
            Code::LoDown => "LO_DOWN",
            Code::MissingInterface => "MISSING_INTERFACE",
            Code::WrongPlacement => "WRONG_PLACEMENT",
            Code::BridgePortDetached => "BRIDGE_PORT_DETACHED",
            Code::BridgePortWrongBridge => "BRIDGE_PORT_WRONG_BRIDGE",
            Code::StpBlocking => "STP_BLOCKING",
            Code::OvsPortError => "OVS_PORT_ERROR",
            Code::NoSourceAddress => "NO_SOURCE_ADDRESS",
            Code::NoRoute => "NO_ROUTE",
            Code::NoSuchAddress => "NO_SUCH_ADDRESS",
            Code::WrongSubnet => "WRONG_SUBNET",
            Code::DuplicateAddress => "DUPLICATE_ADDRESS",
            Code::ForwardingOff => "FORWARDING_OFF",
            Code::NoReturnRoute => "NO_RETURN_ROUTE",
            Code::MtuMismatch => "MTU_MISMATCH",
            Code::AcceptLocal => "ACCEPT_LOCAL",
            Code::RpFilter => "RP_FILTER",
            Code::ArpIgnore => "ARP_IGNORE",
            Code::ArpFilter => "ARP_FILTER",
            Code::ArpAnnounce => "ARP_ANNOUNCE",
            Code::FastpathMissingMac => "FASTPATH_MISSING_MAC",
            Code::ProbeUnanswered => "PROBE_UNANSWERED",
            Code::ProbeMtu => "PROBE_MTU",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that repairs a finding, as argv (run without a shell) and as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What a person types.
    pub command: String,
    /// The same as argv; empty when the fix is not one command (then `command` says what to do).
    #[serde(skip)]
    pub argv: Vec<String>,
}

impl Fix {
    /// A command run in namespace `netns` (`host` = the root namespace).
    pub fn in_ns(netns: &str, args: &[&str]) -> Self {
        let mut argv: Vec<String> = Vec::new();
        if netns != crate::topology::HOST {
            argv.extend(["ip", "netns", "exec", netns].map(String::from));
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        Self {
            command: argv.join(" "),
            argv,
        }
    }

    /// `sysctl -w KEY=VALUE` inside `netns`.
    pub fn sysctl(netns: &str, key: &str, value: &str) -> Self {
        Self::in_ns(netns, &["sysctl", "-w", &format!("{key}={value}")])
    }

    /// Advice that is not a single command.
    pub fn advice(text: impl Into<String>) -> Self {
        Self {
            command: text.into(),
            argv: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Finding {
    pub code: Code,
    #[schemars(with = "crate::schemas::wire::Netns")]
    pub netns: String,
    /// Empty when the finding is about a namespace as a whole.
    pub ifname: String,
    /// What is wrong, one sentence.
    #[schemars(length(min = 1))]
    pub message: String,
    /// The value read or the hop seen that proves it.
    #[schemars(length(min = 1))]
    pub evidence: String,
    pub fix: Option<String>,
    #[serde(skip)]
    pub fix_argv: Vec<String>,
}

impl Finding {
    pub fn new(
        code: Code,
        netns: &str,
        ifname: &str,
        message: impl Into<String>,
        evidence: impl Into<String>,
        fix: Option<Fix>,
    ) -> Self {
        let (fix, fix_argv) = match fix {
            Some(f) => (Some(f.command), f.argv),
            None => (None, Vec::new()),
        };
        Self {
            code,
            netns: netns.to_string(),
            ifname: ifname.to_string(),
            message: message.into(),
            evidence: evidence.into(),
            fix,
            fix_argv,
        }
    }

    /// `ns/ifname`, root-namespace objects as `host/IFNAME`.
    pub fn object(&self) -> String {
        if self.ifname.is_empty() {
            self.netns.clone()
        } else {
            format!("{}/{}", self.netns, self.ifname)
        }
    }
}

/// Findings without repeats (the forward and return walks see the same links).
#[derive(Debug, Default)]
pub struct Findings {
    list: Vec<Finding>,
}

impl Findings {
    pub fn push(&mut self, f: Finding) {
        if !self
            .list
            .iter()
            .any(|o| o.code == f.code && o.netns == f.netns && o.ifname == f.ifname)
        {
            self.list.push(f);
        }
    }

    pub fn has(&self, code: Code) -> bool {
        self.list.iter().any(|f| f.code == code)
    }

    pub fn has_on(&self, code: Code, netns: &str, ifname: &str) -> bool {
        self.list
            .iter()
            .any(|f| f.code == code && f.netns == netns && f.ifname == ifname)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.list
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.list.iter()
    }
}
