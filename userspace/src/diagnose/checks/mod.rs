//! The checks, one module per concern. Each pushes [`Finding`](super::finding::Finding)s
//! and returns whether the object passed, so a walk can stop at the first fault.

pub mod drift;
pub mod fastpath;
pub mod link;
pub mod netfilter;
pub mod placement;
pub mod sysctl;
