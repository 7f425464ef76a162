//! Making and removing labs: plan → apply (recording ownership) → undo on failure;
//! `down` finds a lab's objects by their ownership marks, so it also works after a
//! crash or with the state file lost.

mod apply;
mod bulk;
pub mod census;
mod change;
pub mod diff;
mod error;
mod ethtool;
pub mod mark;
mod preflight;
pub mod state;
mod teardown;

pub use apply::{UpOptions, UpOutcome, up};
pub use error::WireError;
pub use ethtool::set_tx_checksum;
pub use preflight::owner_of_netns;
pub use teardown::{DownReport, down, down_all, known_labs};

/// Where vethscope keeps its run-time state (tmpfs: labs do not survive a reboot either).
pub const RUN_DIR: &str = "/run/vethscope";

pub fn ovs_run_dir() -> std::path::PathBuf {
    std::path::Path::new(RUN_DIR).join("ovs")
}
