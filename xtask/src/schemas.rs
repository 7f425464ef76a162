//! `cargo xtask schemas`: rewrites docs/*-json-schema.json from the Rust types
//! (`vethscope::schemas`, run through `userspace/examples/write_schemas.rs`).
//! tests/schemas.rs fails when a committed file differs from what this writes.

use anyhow::Result;

use crate::util;

pub fn run() -> Result<()> {
    let docs = util::repo_root().join("docs");
    util::run(
        util::cargo()
            .args(["run", "--quiet", "--package", "vethscope", "--example"])
            .arg("write_schemas")
            .arg("--")
            .arg(docs),
    )
}
