//! OVSDB's JSON notation (RFC 7047 §5.1): building operations and reading
//! atoms, sets, maps and uuids out of `select` results. Sets with one member
//! and optional columns come back in two shapes, hence these helpers.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

pub(super) fn absent(table: &str, name: &str) -> Value {
    json!({"op": "wait", "table": table, "timeout": 0, "where": [["name", "==", name]],
           "columns": ["name"], "until": "==", "rows": []})
}

pub(super) fn present(table: &str, name: &str) -> Value {
    json!({"op": "wait", "table": table, "timeout": 0, "where": [["name", "==", name]],
           "columns": ["name"], "until": "!=", "rows": []})
}

pub(super) fn select_all(table: &str, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": [], "columns": columns})
}

pub(super) fn ovs_map(pairs: &[(&str, &str)]) -> Value {
    let entries: Vec<Value> = pairs.iter().map(|(k, v)| json!([k, v])).collect();
    json!(["map", entries])
}

pub(super) fn rows(results: &[Value], index: usize) -> &[Value] {
    results
        .get(index)
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(super) fn first_row(results: &[Value], index: usize) -> Option<&Value> {
    rows(results, index).first()
}

pub(super) fn rows_by_uuid(results: &[Value], index: usize) -> HashMap<String, Value> {
    rows(results, index)
        .iter()
        .filter_map(|r| uuid(&r["_uuid"]).map(|u| (u, r.clone())))
        .collect()
}

pub(super) fn next_cfg(results: &[Value], index: usize) -> Option<i64> {
    first_row(results, index).and_then(|r| r["next_cfg"].as_i64())
}

/// `["uuid", "..."]` → the uuid string.
pub(super) fn uuid(v: &Value) -> Option<String> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, id]) if tag == "uuid" => id.as_str().map(str::to_string),
        _ => None,
    }
}

/// A set of uuids is either one `["uuid", ..]` or `["set", [["uuid", ..], ..]]`.
pub(super) fn uuids(v: &Value) -> Vec<String> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, members]) if tag == "set" => members
            .as_array()
            .map(|m| m.iter().filter_map(uuid).collect())
            .unwrap_or_default(),
        _ => uuid(v).into_iter().collect(),
    }
}

/// An optional column (min 0, max 1) is `["set", []]` when empty, else the atom.
pub(super) fn opt_atom(v: &Value) -> Option<&Value> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, members]) if tag == "set" => members.as_array().and_then(|m| m.first()),
        _ if v.is_null() => None,
        _ => Some(v),
    }
}

pub(super) fn atom_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => uuid(other).unwrap_or_else(|| other.to_string()),
    }
}

pub(super) fn ovs_map_pairs(v: &Value) -> impl Iterator<Item = (&Value, &Value)> {
    let pairs = match v.as_array().map(Vec::as_slice) {
        Some([tag, pairs]) if tag == "map" => pairs.as_array().map(Vec::as_slice),
        _ => None,
    };
    pairs
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([k, v]) => Some((k, v)),
            _ => None,
        })
}

pub(super) fn ovs_map_get(v: &Value, key: &str) -> Option<String> {
    ovs_map_pairs(v)
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| atom_text(v))
}

pub(super) fn ovs_map_entries(v: &Value) -> BTreeMap<String, String> {
    ovs_map_pairs(v)
        .map(|(k, v)| (atom_text(k), atom_text(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ovsdb_values() {
        assert_eq!(opt_atom(&json!(["set", []])), None);
        assert_eq!(opt_atom(&json!(3)), Some(&json!(3)));
        assert_eq!(opt_atom(&json!(["set", [7]])), Some(&json!(7)));
        assert_eq!(uuids(&json!(["uuid", "a"])), vec!["a".to_string()]);
        assert_eq!(
            uuids(&json!(["set", [["uuid", "a"], ["uuid", "b"]]])),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(uuids(&json!(["set", []])).is_empty());
        let m = json!(["map", [["owner", "lab1"], ["x", "y"]]]);
        assert_eq!(ovs_map_get(&m, "owner").as_deref(), Some("lab1"));
        assert_eq!(ovs_map_get(&m, "nope"), None);
        assert_eq!(ovs_map_entries(&m).len(), 2);
        assert_eq!(ovs_map(&[("a", "b")]), json!(["map", [["a", "b"]]]));
    }
}
