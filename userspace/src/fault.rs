//! Fault injection for the crash-safety tests: with `VETHSCOPE_FAULT_AFTER=N` in the
//! environment, the process kills itself with SIGKILL at the N-th fault point it
//! passes (1-based). Fault points sit between the steps of `up` and `down` that change
//! the kernel, so the tests can stop vethscope at every one of them and check that a
//! later `down` removes exactly the lab's objects and a second `up` succeeds.
//! Without the variable a fault point is one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const ENV: &str = "VETHSCOPE_FAULT_AFTER";

fn limit() -> Option<usize> {
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    *LIMIT.get_or_init(|| std::env::var(ENV).ok()?.trim().parse().ok())
}

static PASSED: AtomicUsize = AtomicUsize::new(0);

/// Marks a point between two steps; `what` is logged so a test failure says where.
#[allow(
    clippy::print_stderr,
    reason = "the process kills itself next (fault injection for tests): there is no caller left to return this to"
)]
pub fn point(what: &str) {
    let Some(limit) = limit() else {
        return;
    };
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    if n >= limit {
        eprintln!("vethscope: fault injection: killed at point {n} ({what})");
        // SIGKILL, like the OOM killer or `kill -9`: no destructor, no unwinding.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
    }
}
