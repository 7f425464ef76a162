//! Thin accessors over saphyr's marked YAML nodes: every lookup that fails becomes a
//! [`TopologyError`] pointing at the node's line and column.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::{Location, Pos, TopologyError};

pub type Node<'a> = MarkedYaml<'a>;

/// Loads the single document of a file.
pub fn load<'a>(text: &'a str, file: &str) -> Result<Node<'a>, TopologyError> {
    let mut docs = MarkedYaml::load_from_str(text).map_err(|e| TopologyError::Syntax {
        file: file.to_string(),
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    match docs.len() {
        0 => Err(TopologyError::Syntax {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: "the file is empty; a lab needs at least `name:` and `links:`".into(),
        }),
        1 => Ok(docs.remove(0)),
        _ => Err(TopologyError::Syntax {
            file: file.to_string(),
            line: docs[1].span.start.line(),
            col: 1,
            message: "more than one YAML document; put one lab per file".into(),
        }),
    }
}

pub fn pos(node: &Node<'_>) -> Pos {
    Pos {
        line: node.span.start.line(),
        col: node.span.start.col() + 1,
    }
}

/// Builds errors for one file.
pub struct Errors<'f> {
    pub file: &'f str,
}

impl Errors<'_> {
    pub fn at(
        &self,
        pos: Pos,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> TopologyError {
        TopologyError::Invalid {
            at: Location {
                file: self.file.to_string(),
                line: pos.line,
                col: pos.col,
                object: object.into(),
            },
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(
        &self,
        pos: Pos,
        object: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> TopologyError {
        match self.at(pos, object, message) {
            TopologyError::Invalid { at, message, .. } => TopologyError::Invalid {
                at,
                message,
                hint: Some(hint.into()),
            },
            other => other,
        }
    }
}

/// A scalar as text (numbers and booleans too: sysctl values are written either way).
pub fn scalar_text(node: &Node<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(if *b { "1".into() } else { "0".into() }),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

/// Key/value pairs of a mapping, keys as text, in file order.
pub fn entries<'n, 'a>(
    node: &'n Node<'a>,
    errs: &Errors<'_>,
    object: &str,
) -> Result<Vec<(String, &'n Node<'a>, Pos)>, TopologyError> {
    match &node.data {
        YamlData::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let key = scalar_text(k)
                    .ok_or_else(|| errs.at(pos(k), object, "keys must be plain words"))?;
                Ok((key, v, pos(k)))
            })
            .collect(),
        _ => Err(errs.at(
            pos(node),
            object,
            "expected a mapping (key: value, or {key: value})",
        )),
    }
}

pub fn sequence<'n, 'a>(
    node: &'n Node<'a>,
    errs: &Errors<'_>,
    object: &str,
) -> Result<Vec<&'n Node<'a>>, TopologyError> {
    match &node.data {
        YamlData::Sequence(items) => Ok(items.iter().collect()),
        YamlData::Value(Scalar::Null) => Ok(Vec::new()),
        _ => Err(errs.at(pos(node), object, "expected a list (- item, or [a, b])")),
    }
}

pub fn string(
    node: &Node<'_>,
    errs: &Errors<'_>,
    object: &str,
    key: &str,
) -> Result<String, TopologyError> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Ok(s.to_string()),
        YamlData::Representation(s, _, _) => Ok(s.to_string()),
        _ => scalar_text(node)
            .ok_or_else(|| errs.at(pos(node), object, format!("`{key}` must be a string"))),
    }
}

pub fn integer(
    node: &Node<'_>,
    errs: &Errors<'_>,
    object: &str,
    key: &str,
) -> Result<i64, TopologyError> {
    match &node.data {
        YamlData::Value(Scalar::Integer(i)) => Ok(*i),
        _ => scalar_text(node)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| errs.at(pos(node), object, format!("`{key}` must be a whole number"))),
    }
}

/// Rejects keys outside `allowed`, suggesting the closest one.
pub fn check_keys(
    entries: &[(String, &Node<'_>, Pos)],
    allowed: &[&str],
    errs: &Errors<'_>,
    object: &str,
) -> Result<(), TopologyError> {
    for (key, _, at) in entries {
        if !allowed.contains(&key.as_str()) {
            let msg = format!("unknown key `{key}`");
            return Err(match closest(key, allowed) {
                Some(best) => errs.hint(*at, object, msg, format!("did you mean `{best}`?")),
                None => errs.hint(
                    *at,
                    object,
                    msg,
                    format!("allowed keys: {}", allowed.join(", ")),
                ),
            });
        }
    }
    Ok(())
}

/// The allowed word within edit distance 2, if any.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
