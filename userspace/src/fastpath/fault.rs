//! Fault injection for tests: with `VETHSCOPE_FAULT_AFTER=N` the process kills itself
//! with SIGKILL when it reaches its N-th fault point, so a test can stop `fastpath
//! enable`/`disable` between any two steps and prove that `disable`/`down` then leaves
//! nothing behind. With `VETHSCOPE_FAULT_ACTION=error` as well, the N-th point fails
//! with an error instead, which exercises `enable`'s own rollback. Without the
//! variables a fault point costs one initialized-once read.
//!
//! (Minimal on purpose: a shared progress/fault-point helper may replace it.)

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::FastpathError;

pub const ENV: &str = "VETHSCOPE_FAULT_AFTER";
pub const ACTION_ENV: &str = "VETHSCOPE_FAULT_ACTION";

struct Plan {
    after: u64,
    error: bool,
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);
static START: OnceLock<std::time::Instant> = OnceLock::new();

/// Starts the clock of the debug log's step times (`VETHSCOPE_LOG=debug`).
pub fn start_clock() {
    START.get_or_init(std::time::Instant::now);
}

/// One step is done; `what` says which (printed when the fault fires here).
#[allow(
    clippy::print_stderr,
    reason = "the process kills itself next (fault injection for tests): there is no caller left to return this to"
)]
pub fn point(what: &str) -> Result<(), FastpathError> {
    let since = START.get_or_init(std::time::Instant::now).elapsed();
    tracing::debug!(step = what, ms = since.as_millis() as u64, "fast path");
    let plan = PLAN.get_or_init(|| {
        Some(Plan {
            after: std::env::var(ENV).ok()?.parse().ok()?,
            error: std::env::var(ACTION_ENV).is_ok_and(|a| a == "error"),
        })
    });
    let Some(plan) = plan else {
        return Ok(());
    };
    let n = PASSED.fetch_add(1, Ordering::Relaxed) + 1;
    if n != plan.after {
        return Ok(());
    }
    if plan.error {
        return Err(FastpathError::Injected {
            point: format!("{n} ({what})"),
        });
    }
    eprintln!("fault injection: killed at fault point {n} ({what})");
    // SIGKILL, not exit: no destructor, no flush — exactly what a crash leaves.
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    Ok(())
}
