//! Writes docs/*-json-schema.json from the Rust types (`cargo xtask schemas` runs this;
//! tests/schemas.rs checks the committed files against the same generator).
//!
//! Usage: `cargo run -p vethscope --example write_schemas -- DOCS_DIR`

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: it reports what it wrote"
)]
use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write_schemas DOCS_DIR");
        return ExitCode::FAILURE;
    };
    for schema in vethscope::schemas::all() {
        let path = dir.join(schema.file);
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == schema.text);
        if unchanged {
            println!("{}: unchanged", path.display());
            continue;
        }
        if let Err(e) = std::fs::write(&path, &schema.text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{}: written", path.display());
    }
    ExitCode::SUCCESS
}
