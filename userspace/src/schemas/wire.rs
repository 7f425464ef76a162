//! Wire types: what a field looks like in the JSON when its Rust type says less (a
//! `String` that is always an interface name, a `&'static str` that is one of a few
//! words). Fields name them with `#[schemars(with = "…")]`; they exist only for the
//! schemas and are never constructed.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A string type given by a literal schema (a `$defs` entry named `$name`).
macro_rules! wire_string {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $schema:tt) => {
        $(#[$doc])*
        pub struct $ty;

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_id() -> Cow<'static, str> {
                concat!(module_path!(), "::", $name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

wire_string!(
    /// A namespace name as the lab names it; `host` for the root namespace.
    Netns,
    "netns",
    {
        "description": "Name of the network namespace as the lab names it; \"host\" for the root (initial) namespace.",
        "type": "string",
        "minLength": 1
    }
);

wire_string!(
    /// An interface name (IFNAMSIZ-1 bytes at most, no '/' or whitespace).
    Ifname,
    "ifname",
    {
        "description": "Interface name inside its namespace (at most IFNAMSIZ-1 = 15 bytes, never contains '/' or whitespace).",
        "type": "string",
        "minLength": 1,
        "maxLength": 15,
        "pattern": "^[^/\\s]+$"
    }
);

wire_string!(
    /// `aa:bb:cc:dd:ee:ff`, lowercase.
    Mac,
    "mac",
    {
        "description": "Lowercase, colon-separated MAC address.",
        "type": "string",
        "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
    }
);

wire_string!(
    /// A non-empty string (a lab name, a message).
    NonEmpty,
    "non_empty",
    { "type": "string", "minLength": 1 }
);

wire_string!(
    /// `namespace/interface`.
    IfRef,
    "ifref",
    {
        "description": "namespace/interface; root-namespace interfaces are host/IFNAME",
        "type": "string",
        "pattern": "^[^/]+/[^/]+$"
    }
);

wire_string!(
    /// `namespace/interface direction`.
    HookRef,
    "hook",
    {
        "description": "namespace/interface direction",
        "type": "string",
        "pattern": "^[^/]+/[^/ ]+ (ingress|egress)$"
    }
);

wire_string!(
    /// Why an impairment did something to a packet, naming the end's setting.
    ImpairReason,
    "impair_reason",
    {
        "description": "Why, naming the end's configured setting: \"dropped by impairment: loss 1%\", \"duplicated by impairment: duplicate 0.5%\", \"corrupted by impairment: corrupt 0.1%\" (\"(setting since cleared)\" instead of the value when the impairment was removed meanwhile). Present exactly with `impair`.",
        "type": "string",
        "pattern": "^(dropped|duplicated|corrupted) by impairment: (loss|duplicate|corrupt) "
    }
);

wire_string!(
    /// "agree", or "disagree: …".
    Agreement,
    "agreement",
    {
        "description": "\"agree\", or \"disagree: …\" when the probe and the static checks differ; absent without a probe.",
        "type": "string",
        "pattern": "^(agree|disagree: .+)$"
    }
);

/// The few words a `&'static str` or `String` field takes, as a string enum.
macro_rules! wire_words {
    ($(#[$doc:meta])* $ty:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(JsonSchema)]
        pub enum $ty {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant),+
        }
    };
}

wire_words!(
    /// Which TC hook saw the packet: egress (leaving the interface) or ingress (arriving on it).
    Dir { Egress = "egress", Ingress = "ingress" }
);

wire_words!(
    /// What the trace follows.
    Proto { Icmp = "icmp", Icmpv6 = "icmpv6", Arp = "arp" }
);

wire_words!(
    /// ICMP / ICMPv6 message type. neighbor-solicitation and neighbor-advertisement exist
    /// only for icmpv6; `other` is any type not listed.
    IcmpType {
        EchoRequest = "echo-request",
        EchoReply = "echo-reply",
        NeighborSolicitation = "neighbor-solicitation",
        NeighborAdvertisement = "neighbor-advertisement",
        DestUnreachable = "dest-unreachable",
        TimeExceeded = "time-exceeded",
        Other = "other",
    }
);

wire_words!(
    /// ARP operation.
    ArpOp { Request = "request", Reply = "reply" }
);

wire_words!(
    /// What the lab's impairment program (not a trace hook) did to this packet at the
    /// egress of an impaired end.
    ImpairAction { Drop = "drop", Duplicate = "duplicate", Corrupt = "corrupt" }
);

wire_words!(
    /// Whether the request got its reply.
    Verdict { Answered = "answered", Unanswered = "unanswered" }
);

wire_words!(
    /// "up", "creating" (an `up` is running or died), "changing" (an `up FILE` on the
    /// running lab is applying a change, or died), or "unrecorded" (marks only).
    LabStatus { Up = "up", Creating = "creating", Changing = "changing", Unrecorded = "unrecorded" }
);

wire_words!(
    /// Address family of a route.
    Family { Ipv4 = "ipv4", Ipv6 = "ipv6" }
);

wire_words!(
    /// Which switch a bridge is: a Linux bridge or an Open vSwitch bridge.
    BridgeKind { Linux = "linux", Ovs = "ovs" }
);

wire_words!(
    /// What diagnose sent.
    ProbeKind { IcmpEcho = "icmp echo", Icmpv6Echo = "icmpv6 echo" }
);

wire_words!(
    /// Neighbour discovery protocol.
    NeighbourProto { Arp = "arp", Nd = "nd" }
);
