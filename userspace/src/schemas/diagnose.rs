//! `diagnose --json`: one document per run, a pair (with --from/--to) or a report.

use schemars::JsonSchema;

use crate::diagnose::{Report, render::PairDocument};

/// The document `diagnose --json` prints. Never built: `diagnose::render::json` writes
/// one of the two.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum DiagnoseDocument {
    Pair(PairDocument<'static>),
    Report(Report),
}

#[cfg(test)]
mod tests {
    //! Documents from the real renderer validate against the generated schema, and the
    //! single-pair document has the bytes the renderer wrote before `PairDocument`.

    use serde_json::Value;

    use crate::diagnose::{
        Code, Finding, PairReport, Report,
        finding::Fix,
        probe::{NeighbourReport, ProbeReport},
        render,
    };

    fn validator() -> jsonschema::Validator {
        let file = super::super::all()
            .into_iter()
            .find(|f| f.file == "diagnose-json-schema.json")
            .expect("diagnose schema generated");
        let schema: Value = serde_json::from_str(&file.text).expect("schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    }

    fn pair(ok: bool) -> PairReport {
        PairReport {
            ok,
            from: "ns1".into(),
            to: "10.1.1.3".parse().expect("address"),
            path: vec!["ns1/veth0".into(), "ns2/veth1".into()],
            return_path: vec!["ns2/veth1".into(), "ns1/veth0".into()],
            findings: if ok {
                Vec::new()
            } else {
                vec![Finding::new(
                    Code::RpFilter,
                    "ns2",
                    "veth1",
                    "reverse-path filtering drops the request",
                    "net.ipv4.conf.veth1.rp_filter = 1",
                    Some(Fix::sysctl("ns2", "net.ipv4.conf.veth1.rp_filter", "0")),
                )]
            },
            probe: Some(ProbeReport {
                kind: "icmp echo",
                src: Some("10.1.1.2".parse().expect("address")),
                bound_to: None,
                answered: ok,
                rtt_ms: ok.then_some(0.05),
                request: vec!["ns1/veth0 egress".into(), "ns2/veth1 ingress".into()],
                reply: Vec::new(),
                reply_via_lo: false,
                last_seen: (!ok).then(|| "ns2/veth1 ingress".into()),
                neighbour: vec![NeighbourReport {
                    proto: "arp",
                    asker: "10.1.1.2".parse().expect("address"),
                    target: "10.1.1.3".parse().expect("address"),
                    answered: true,
                    attempts: 1,
                    request: vec!["ns1/veth0 egress".into()],
                    last_seen: None,
                }],
                drops: Vec::new(),
                mtu_probe: None,
                observed: 2,
                error: None,
            }),
            agreement: Some("agree".into()),
        }
    }

    #[test]
    fn rendered_documents_match_the_generated_schema() {
        let v = validator();
        let single = Report {
            ok: false,
            lab: "lab1".into(),
            pairs_total: 1,
            pairs_checked: 1,
            pairs: vec![pair(false)],
            elapsed_ms: 12.345_67,
        };
        let text = render::json(&single, true);
        // What the renderer wrote before PairDocument: the pair's Value plus two members.
        let mut before = serde_json::to_value(&single.pairs[0]).expect("pair as a Value");
        if let Some(m) = before.as_object_mut() {
            m.insert("lab".into(), "lab1".into());
            m.insert("elapsed_ms".into(), 12.346.into());
        }
        assert_eq!(text, before.to_string());
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc} does not match: {errors:?}");

        let all = Report {
            ok: false,
            lab: "lab1".into(),
            pairs_total: 3,
            pairs_checked: 2,
            pairs: vec![pair(true), pair(false)],
            elapsed_ms: 40.0,
        };
        let doc: Value = serde_json::from_str(&render::json(&all, false)).expect("JSON");
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc} does not match: {errors:?}");

        let mut stray = doc.clone();
        stray["pairs"][0]["lab"] = "lab1".into();
        assert!(!v.is_valid(&stray), "a pair inside a report carries no lab");
        let mut bad_code = doc;
        bad_code["pairs"][1]["findings"][0]["code"] = "NOT_A_CODE".into();
        assert!(!v.is_valid(&bad_code), "unknown finding code accepted");
    }
}
