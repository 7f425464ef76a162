//! Fault injection for tests: with `VETHSCOPE_FAULT_AFTER=N` the process kills itself
//! with SIGKILL when it reaches its N-th fault point, so a test can stop `fastpath
//! enable`/`disable` between any two steps and prove that `disable`/`down` then leaves
//! nothing behind. Without the variable a fault point is one relaxed atomic load.
//!
//! (Minimal on purpose: a shared progress/fault-point helper may replace it.)

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ENV: &str = "VETHSCOPE_FAULT_AFTER";

static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

/// One step is done; `what` says which (printed when the process is killed here).
pub fn point(what: &str) {
    let Some(limit) = *LIMIT.get_or_init(|| std::env::var(ENV).ok()?.parse().ok()) else {
        return;
    };
    let n = PASSED.fetch_add(1, Ordering::Relaxed) + 1;
    if n == limit {
        eprintln!("fault injection: killed at fault point {n} ({what})");
        // SIGKILL, not exit: no destructor, no flush — exactly what a crash leaves.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
