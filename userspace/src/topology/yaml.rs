//! Thin accessors over saphyr's marked YAML nodes: every lookup that fails becomes a
//! [`TopologyError`] pointing at the node's line and column.

use std::collections::{HashMap, HashSet};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::{Event, Parser, Span};

use super::{Location, Pos, TopologyError};

pub type Node<'a> = MarkedYaml<'a>;

/// Largest topology file: a 10,000-link lab is about 1 MiB.
pub const FILE_MAX: usize = 4 << 20;
/// Deepest nesting: a lab needs 6 levels; deeper is a parser-stack attack.
const DEPTH_MAX: usize = 32;
/// Most nodes, with every alias counted as the size of what it refers to (so an
/// anchor/alias "billion laughs" file is refused before the tree is built).
const NODES_MAX: usize = 500_000;

/// Loads the single document of a file.
pub fn load<'a>(text: &'a str, file: &str) -> Result<Node<'a>, TopologyError> {
    precheck(text, file)?;
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

fn syntax(file: &str, line: usize, col: usize, message: impl Into<String>) -> TopologyError {
    TopologyError::Syntax {
        file: file.to_string(),
        line,
        col,
        message: message.into(),
    }
}

/// One open collection while walking the event stream.
struct Frame {
    anchor: usize,
    nodes_at_start: usize,
    mapping: bool,
    /// Children seen so far (in a mapping, even ones are keys).
    children: usize,
    keys: HashSet<String>,
}

/// Limits and duplicate keys, checked on the parser's event stream before the tree is
/// built: file size, NUL bytes, nesting depth, node count with aliases expanded, and
/// duplicate mapping keys (the tree would silently keep only one of them).
fn precheck(text: &str, file: &str) -> Result<(), TopologyError> {
    if text.len() > FILE_MAX {
        return Err(syntax(
            file,
            1,
            1,
            format!("the file is larger than {} MiB", FILE_MAX >> 20),
        ));
    }
    if let Some(at) = text.find('\0') {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
        return Err(syntax(file, line, col, "the file contains a NUL byte"));
    }
    let at = |span: &Span| (span.start.line(), span.start.col() + 1);
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut nodes = 0usize;
    let mut anchored: HashMap<usize, usize> = HashMap::new();
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            syntax(
                file,
                e.marker().line(),
                e.marker().col() + 1,
                e.info().to_string(),
            )
        })?;
        let (line, col) = at(&span);
        let (size, key, opens, anchor) = match &event {
            Event::Scalar(v, _, anchor, _) => (1, Some(v.to_string()), None, *anchor),
            Event::Alias(id) => (anchored.get(id).copied().unwrap_or(1), None, None, 0),
            Event::SequenceStart(anchor, _) => (1, None, Some(false), *anchor),
            Event::MappingStart(anchor, _) => (1, None, Some(true), *anchor),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(f) = stack.pop()
                    && f.anchor != 0
                {
                    anchored.insert(f.anchor, nodes - f.nodes_at_start + 1);
                }
                continue;
            }
            _ => continue,
        };
        nodes = nodes.saturating_add(size);
        if nodes > NODES_MAX {
            return Err(syntax(
                file,
                line,
                col,
                format!(
                    "more than {NODES_MAX} YAML nodes (aliases counted as what they repeat); a lab file is far smaller"
                ),
            ));
        }
        if let Some(parent) = stack.last_mut() {
            if parent.mapping
                && parent.children % 2 == 0
                && let Some(k) = &key
                && !parent.keys.insert(k.clone())
            {
                return Err(syntax(
                    file,
                    line,
                    col,
                    format!(
                        "duplicate key `{}` (fix: keep one of them)",
                        k.escape_debug()
                    ),
                ));
            }
            parent.children += 1;
        }
        if anchor != 0 && opens.is_none() {
            anchored.insert(anchor, 1);
        }
        if let Some(mapping) = opens {
            if stack.len() >= DEPTH_MAX {
                return Err(syntax(
                    file,
                    line,
                    col,
                    format!("nesting deeper than {DEPTH_MAX} levels; a lab file needs about 6"),
                ));
            }
            stack.push(Frame {
                anchor,
                nodes_at_start: nodes,
                mapping,
                children: 0,
                keys: HashSet::new(),
            });
        }
    }
    Ok(())
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

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
