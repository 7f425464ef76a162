//! `trace --json`: one NDJSON line is a hop, a path or the summary. The members come from
//! the line types in `trace::output`; the rules here say which members go together
//! (an ARP hop has no ICMP members, an answered path has no `last_seen`), which a flat
//! struct of `Option`s cannot say by itself.

use schemars::{JsonSchema, Schema};
use serde_json::{Value, json};

use crate::trace::output::{HopLine, PathLine, SummaryLine};

/// One line of `trace --json`. Never built: the writers serialise each kind directly.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum TraceLine {
    Hop(HopLine<'static>),
    Path(PathLine<'static>),
    Summary(SummaryLine),
}

/// `impair` and `reason` come together.
pub fn impair_with_reason(schema: &mut Schema) {
    schema.insert(
        "dependentRequired".into(),
        json!({ "impair": ["reason"], "reason": ["impair"] }),
    );
}

/// A hop's members by protocol: ARP members for ARP, ICMP members otherwise; IPv4
/// addresses for icmp, IPv6 for icmpv6; echo id/seq exactly for echoes; the ND target
/// exactly for neighbour solicitations and advertisements.
pub fn hop_rules(schema: &mut Schema) {
    impair_with_reason(schema);
    let arp_members = ["op", "sender_ip", "target_ip", "sender_mac", "target_mac"];
    let icmp_members = [
        "icmp_type",
        "icmp_code",
        "id",
        "seq",
        "src",
        "dst",
        "target",
    ];
    let nd = json!(["neighbor-solicitation", "neighbor-advertisement"]);
    let rules = json!([
        {
            "if": when_proto("arp"),
            "then": { "required": arp_members, "properties": absent(&icmp_members) },
            "else": {
                "required": ["icmp_type", "icmp_code", "src", "dst"],
                "properties": absent(&arp_members)
            }
        },
        {
            "if": when_proto("icmp"),
            "then": { "properties": {
                "src": { "format": "ipv4" },
                "dst": { "format": "ipv4" },
                "icmp_type": { "not": { "enum": nd } }
            } }
        },
        {
            "if": when_proto("icmpv6"),
            "then": { "properties": { "src": { "format": "ipv6" }, "dst": { "format": "ipv6" } } }
        },
        {
            "if": {
                "properties": { "icmp_type": { "enum": ["echo-request", "echo-reply"] } },
                "required": ["icmp_type"]
            },
            "then": { "required": ["id", "seq"] },
            "else": { "properties": absent(&["id", "seq"]) }
        },
        {
            "if": { "properties": { "icmp_type": { "enum": nd } }, "required": ["icmp_type"] },
            "then": { "required": ["target"] },
            "else": { "properties": absent(&["target"]) }
        }
    ]);
    schema.insert("allOf".into(), rules);
}

/// A path's members by verdict and protocol: `rtt_ns` is a number exactly when
/// answered, `last_seen` exactly when unanswered; ARP paths have IPv4 addresses and no
/// echo id/seq. Request and reply hops carry `ts_ns`; `last_seen` does not.
pub fn path_rules(schema: &mut Schema) {
    schema.insert(
        "dependentRequired".into(),
        json!({ "id": ["seq"], "seq": ["id"] }),
    );
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for member in ["request", "reply"] {
            if let Some(Value::Object(items)) =
                props.get_mut(member).and_then(|m| m.get_mut("items"))
            {
                items.insert("required".into(), json!(["ts_ns"]));
            }
        }
        if let Some(Value::Object(last_seen)) = props.get_mut("last_seen") {
            last_seen.insert("properties".into(), absent(&["ts_ns"]));
        }
    }
    let rules = json!([
        {
            "if": { "properties": { "verdict": { "const": "answered" } }, "required": ["verdict"] },
            "then": { "properties": { "rtt_ns": { "type": "integer" }, "last_seen": false } },
            "else": { "required": ["last_seen"], "properties": { "rtt_ns": { "type": "null" } } }
        },
        {
            "if": when_proto("arp"),
            "then": { "properties": {
                "src": { "format": "ipv4" },
                "dst": { "format": "ipv4" },
                "id": false,
                "seq": false
            } }
        },
        {
            "if": when_proto("icmp"),
            "then": { "properties": { "src": { "format": "ipv4" }, "dst": { "format": "ipv4" } } }
        },
        {
            "if": when_proto("icmpv6"),
            "then": { "properties": { "src": { "format": "ipv6" }, "dst": { "format": "ipv6" } } }
        }
    ]);
    schema.insert("allOf".into(), rules);
}

fn when_proto(proto: &str) -> Value {
    json!({ "properties": { "proto": { "const": proto } }, "required": ["proto"] })
}

/// `{"member": false, …}`: the members must not appear.
fn absent(members: &[&str]) -> Value {
    Value::Object(
        members
            .iter()
            .map(|m| (m.to_string(), false.into()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    //! Lines written by the real writers validate against the generated schema, and
    //! the cross-member rules reject what the writers never produce.

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use serde_json::{Value, json};

    use crate::trace::{
        TraceSummary,
        event::{Hop, Impaired, Proto},
        output,
        paths::{Bounds, Correlator},
    };

    fn validator() -> jsonschema::Validator {
        let file = super::super::all()
            .into_iter()
            .find(|f| f.file == "trace-json-schema.json")
            .expect("trace schema generated");
        let schema: Value = serde_json::from_str(&file.text).expect("schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    }

    fn echo(ns: &str, ifname: &str, egress: bool, ts: u64, request: bool) -> Hop {
        let (a, b) = (Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(10, 1, 1, 3));
        let (src, dst) = if request { (a, b) } else { (b, a) };
        Hop {
            ts_ns: ts,
            netns: ns.into(),
            netns_inode: 4_026_532_000,
            ifname: ifname.into(),
            ifindex: 2,
            egress,
            len: 98,
            vlan: None,
            proto: Proto::Icmp {
                v6: false,
                icmp_type: if request { 8 } else { 0 },
                code: 0,
                id: 7,
                seq: 1,
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                nd_target: None,
            },
            frame: Vec::new(),
            impaired: None,
            peer: None,
        }
    }

    fn lines(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Vec<Value> {
        let mut out = Vec::new();
        write(&mut out).expect("written");
        String::from_utf8(out)
            .expect("UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn assert_valid(v: &jsonschema::Validator, line: &Value) {
        let errors: Vec<String> = v.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line} does not match: {errors:?}");
    }

    #[test]
    fn written_lines_match_the_generated_schema() {
        let v = validator();
        let mut ns = echo("ns1", "veth0", true, 10, true);
        ns.proto = Proto::Icmp {
            v6: true,
            icmp_type: 135,
            code: 0,
            id: 0,
            seq: 0,
            src: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 3)),
            nd_target: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3)),
        };
        let mut arp = echo("ns1", "veth0", true, 10, true);
        arp.vlan = Some(10);
        arp.proto = Proto::Arp {
            op: 1,
            sender_ip: Ipv4Addr::new(10, 1, 1, 2),
            target_ip: Ipv4Addr::new(10, 1, 1, 3),
            sender_mac: [2, 0, 0, 0, 0, 1],
            target_mac: [0; 6],
        };
        let mut dropped = echo("ns2", "veth1", true, 15, true);
        dropped.impaired = Some(Impaired {
            action: "drop",
            reason: "dropped by impairment: loss 1%".into(),
        });
        for hop in [echo("ns1", "veth0", true, 10, true), ns, arp, dropped] {
            for line in lines(|out| output::write_hop_json(out, &hop)) {
                assert_valid(&v, &line);
            }
        }

        let mut answered = Correlator::new(1_000_000_000);
        answered.push(echo("ns1", "veth0", true, 10, true));
        answered.push(echo("ns2", "veth1", false, 20, true));
        answered.push(echo("ns2", "veth1", true, 30, false));
        answered.push(echo("ns1", "veth0", false, 40, false));
        let mut unanswered = Correlator::new(1_000_000_000);
        unanswered.push(echo("ns1", "veth0", true, 10, true));
        let paths: Vec<_> = answered
            .drain()
            .into_iter()
            .chain(unanswered.drain())
            .collect();
        assert_eq!(paths.len(), 2);
        for path in &paths {
            for line in lines(|out| output::write_path_json(out, path)) {
                assert_valid(&v, &line);
            }
        }

        let summary = TraceSummary {
            events: 5,
            lost: 0,
            paths: 2,
            unread: 3,
        };
        let bounds = Bounds {
            paths_dropped: 0,
            hops_dropped: 1,
        };
        let summary = lines(|out| output::SummaryLine::new(&summary, bounds).write_json(out));
        assert_eq!(
            serde_json::to_string(&summary[0]).ok().as_deref(),
            Some(
                r#"{"events":5,"hops_dropped":1,"lost":0,"paths":2,"paths_dropped":0,"type":"summary","unread":3}"#
            ),
            "the summary line's members (serde_json sorts them without preserve_order)"
        );
        assert_valid(&v, &summary[0]);
    }

    #[test]
    fn rules_reject_what_the_writers_never_write() {
        let v = validator();
        let hop = lines(|out| output::write_hop_json(out, &echo("ns1", "veth0", true, 10, true)))
            .remove(0);
        let with = |patch: Value| {
            let mut line = hop.clone();
            if let (Some(line), Some(patch)) = (line.as_object_mut(), patch.as_object()) {
                for (k, val) in patch {
                    if val.is_null() {
                        line.remove(k);
                    } else {
                        line.insert(k.clone(), val.clone());
                    }
                }
            }
            line
        };
        let bad = [
            ("unknown member", with(json!({"colour": "red"}))),
            ("ARP member on an ICMP hop", with(json!({"op": "request"}))),
            ("echo without seq", with(json!({"seq": null}))),
            ("impair without reason", with(json!({"impair": "drop"}))),
            (
                "IPv6 source on an icmp hop",
                with(json!({"src": "fd00::2"})),
            ),
            ("bad direction", with(json!({"dir": "sideways"}))),
            (
                "ifname too long",
                with(json!({"ifname": "a-very-long-ifname"})),
            ),
            ("ND target on an echo", with(json!({"target": "fd00::3"}))),
        ];
        for (what, line) in bad {
            assert!(!v.is_valid(&line), "{what} was accepted: {line}");
        }

        let mut c = Correlator::new(1_000_000_000);
        c.push(echo("ns1", "veth0", true, 10, true));
        c.push(echo("ns1", "veth0", false, 40, false));
        let path = lines(|out| output::write_path_json(out, &c.drain()[0])).remove(0);
        assert_valid(&v, &path);
        let mut seen = path.clone();
        seen["last_seen"] = json!({"netns": "ns1", "ifname": "veth0", "dir": "egress"});
        assert!(!v.is_valid(&seen), "answered path with last_seen accepted");
        let mut no_ts = path.clone();
        no_ts["request"][0]
            .as_object_mut()
            .map(|h| h.remove("ts_ns"));
        assert!(!v.is_valid(&no_ts), "request hop without ts_ns accepted");
    }
}
