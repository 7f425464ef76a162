//! `cargo xtask test`: setup, fmt check, clippy, the test suite, then a leftover check.
//!
//! CI reads cargo test's summary lines, so nothing is printed after them on success but
//! the final `xtask test: all passed`.

use anyhow::{Result, anyhow};

use crate::{leftovers, lint, setup, util};

pub fn run() -> Result<()> {
    setup::run_for("test")?;
    let before = leftovers::scan()?;
    leftovers::warn_preexisting(&before);
    for (_, mut cmd) in lint::steps() {
        util::run(&mut cmd)?;
    }
    // The integration tests need root; they run in parallel with unique names.
    let tests = util::run(util::cargo().args(["test", "--workspace", "--", "--test-threads=4"]));
    // Check for leftovers even (especially) when tests failed.
    let clean = leftovers::check(&before);
    match (tests, clean) {
        (Ok(()), Ok(())) => {
            println!("xtask test: all passed");
            Ok(())
        }
        (Err(err), Ok(())) | (Ok(()), Err(err)) => Err(err),
        (Err(tests), Err(clean)) => Err(anyhow!("{tests:#}; and {clean:#}")),
    }
}
