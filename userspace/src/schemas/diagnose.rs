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
