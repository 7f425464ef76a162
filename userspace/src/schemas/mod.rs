//! JSON Schemas of the `--json` formats, generated from the serde types that write them.
//!
//! The files in docs/ (`trace-json-schema.json`, `show-json-schema.json`,
//! `diagnose-json-schema.json`, `bench-json-schema.json`) are the output of [`all`]:
//! `cargo xtask schemas` rewrites them and tests/schemas.rs fails when a committed file
//! differs from what the types say. The types carry `#[derive(JsonSchema)]` and, where a
//! field is wider in Rust than on the wire (a `String` that is always an interface name,
//! a `&'static str` that is one of a few words), a `#[schemars(...)]` attribute naming
//! one of the wire types in [`wire`]. Rules that span several fields (an ARP hop has no
//! ICMP members) are written next to the format, in [`trace`].

pub mod diagnose;
pub mod trace;
pub mod wire;

use schemars::{
    JsonSchema, Schema,
    generate::{SchemaGenerator, SchemaSettings},
    transform::{RecursiveTransform, RestrictFormats, Transform},
};
use serde_json::Value;

/// One generated schema: the file name under docs/ and its text.
pub struct SchemaFile {
    pub file: &'static str,
    pub text: String,
}

/// Every schema this build can generate, in a fixed order.
pub fn all() -> Vec<SchemaFile> {
    vec![
        file::<trace::TraceLine>(
            "trace-json-schema.json",
            "https://vethscope.dev/schema/trace.json",
            "vethscope trace --json: one NDJSON line",
            "Each line printed by `vethscope trace --json` is one JSON object validating against this schema. The `type` member says which kind: `hop` (one packet seen by one TC hook), `path` (a request and its reply followed hop by hop), `summary` (the last line). Every kind rejects unknown members. See docs/trace-json.md.",
        ),
        file::<crate::inspect::LabView>(
            "show-json-schema.json",
            "https://vethscope.dev/schema/show.json",
            "vethscope show LAB --json",
            "The live state of one lab, read from the kernel and OVSDB (never from the topology file). `vethscope show --json` without a lab prints an array of these. Every object rejects members the schema does not list. See docs/show-json.md.",
        ),
        file::<diagnose::DiagnoseDocument>(
            "diagnose-json-schema.json",
            "https://github.com/vethscope/vethscope/docs/diagnose-json-schema.json",
            "vethscope diagnose --json",
            "One JSON document per run. With --from/--to: one pair object (with lab and elapsed_ms). Without: a report of every endpoint pair checked. See docs/diagnose.md.",
        ),
        file::<crate::bench::BenchReport>(
            "bench-json-schema.json",
            "https://vethscope.dev/schema/bench.json",
            "vethscope bench --json",
            "The document `vethscope bench --json` prints (and `--out` writes): the configuration, per-wiring results and the probe overhead. See docs/bench.md.",
        ),
    ]
}

fn file<T: JsonSchema>(file: &'static str, id: &str, title: &str, description: &str) -> SchemaFile {
    let mut schema = generator().into_root_schema_for::<T>();
    let root = schema.ensure_object();
    root.insert("$id".into(), id.into());
    root.insert("title".into(), title.into());
    root.insert("description".into(), description.into());
    let mut text = serde_json::to_string_pretty(&schema)
        .unwrap_or_else(|e| unreachable!("a schema is plain JSON: {e}"));
    text.push('\n');
    SchemaFile { file, text }
}

/// Draft 2020-12, describing what the types serialise (an `Option` skipped when `None`
/// is optional, one always written is required and may be null).
fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .with_transform(RecursiveTransform(TidyDescriptions))
        .with_transform(RecursiveTransform(AddressPatterns))
        .with_transform(RecursiveTransform(AbsentNotNull))
        .with_transform(RecursiveTransform(CloseObjects))
        // Drops schemars' `uint32`-style formats, which no standard defines.
        .with_transform(RestrictFormats::default())
        .into_generator()
}

/// Descriptions come from doc comments: wrapped lines are joined, and rustdoc links
/// (``[`sysctls::INTERFACE_KEYS`]``) become plain code spans.
#[derive(Clone)]
struct TidyDescriptions;

impl Transform for TidyDescriptions {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(Value::String(text)) = schema.get_mut("description") {
            *text = text
                .replace('\n', " ")
                .replace("[`", "`")
                .replace("`]", "`");
        }
    }
}

/// Every object type rejects members it does not list (as the hand-written schemas did):
/// a reader that validates notices a renamed or misspelt member. Maps (objects with
/// `additionalProperties` already set) are left as they are, and so are the partial
/// objects inside `if`/`then` rules, which carry no `"type": "object"`.
#[derive(Clone)]
struct CloseObjects;

impl Transform for CloseObjects {
    fn transform(&mut self, schema: &mut Schema) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        if obj.get("type").and_then(Value::as_str) == Some("object")
            && obj.contains_key("properties")
            && !obj.contains_key("additionalProperties")
        {
            obj.insert("additionalProperties".into(), false.into());
        }
    }
}

/// A member that may be absent is never null: every optional member of these formats is
/// an `Option` skipped when `None` (`skip_serializing_if`), so the `null` schemars allows
/// for an `Option` is dropped for members not in `required`. A member always written
/// (`rtt_ns`, `mac`) keeps its `null`.
#[derive(Clone)]
struct AbsentNotNull;

impl Transform for AbsentNotNull {
    fn transform(&mut self, schema: &mut Schema) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        if obj.get("type").and_then(Value::as_str) != Some("object") {
            return;
        }
        let required: Vec<Value> = obj
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(Value::Object(properties)) = obj.get_mut("properties") else {
            return;
        };
        for (name, member) in properties.iter_mut() {
            if !required.iter().any(|r| r.as_str() == Some(name)) {
                drop_null(member);
            }
        }
    }
}

/// `{"type": ["string", "null"]}` → `{"type": "string"}`;
/// `{"anyOf": [S, {"type": "null"}], …}` → S's members merged into the schema.
fn drop_null(member: &mut Value) {
    let Some(m) = member.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = m.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            m.insert("type".into(), only);
        }
    }
    let null = serde_json::json!({ "type": "null" });
    if let Some(Value::Array(alternatives)) = m.get_mut("anyOf") {
        alternatives.retain(|a| *a != null);
        if alternatives.len() == 1
            && let Some(Value::Object(only)) = alternatives.pop()
        {
            m.remove("anyOf");
            for (key, value) in only {
                m.entry(key).or_insert(value);
            }
        }
    }
}

/// Addresses: schemars writes `format: ipv4|ipv6|ip`. Validators check `format` only when
/// asked to, so each gets a pattern too (exact for IPv4, a coarse filter for IPv6), and
/// the non-standard `ip` becomes "IPv4 or IPv6".
#[derive(Clone)]
struct AddressPatterns;

/// Dotted quad, each part 0–255 without leading zeros.
pub const IPV4_PATTERN: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$";
/// RFC 5952 text (lowercase, compressed) as `Ipv6Addr` prints it; only a coarse filter.
pub const IPV6_PATTERN: &str = r"^[0-9a-f.]*:[0-9a-f:.]*$";

impl Transform for AddressPatterns {
    fn transform(&mut self, schema: &mut Schema) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        let pattern = match obj.get("format").and_then(Value::as_str) {
            Some("ipv4") => IPV4_PATTERN,
            Some("ipv6") => IPV6_PATTERN,
            Some("ip") => {
                obj.remove("format");
                obj.insert(
                    "anyOf".into(),
                    serde_json::json!([
                        {"format": "ipv4", "pattern": IPV4_PATTERN},
                        {"format": "ipv6", "pattern": IPV6_PATTERN},
                    ]),
                );
                return;
            }
            _ => return,
        };
        obj.insert("pattern".into(), pattern.into());
    }
}
