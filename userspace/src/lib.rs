//! vethscope: wire Linux network namespaces together and watch every packet with eBPF.
//!
//! The library holds all logic; `main.rs` only parses arguments and reports errors.
//! Data flows: `topology` (parse + validate) → `wire` (plan, apply, record ownership,
//! undo) → kernel objects → `inspect` (live state) / `probe` (eBPF) → `trace`, `metrics`.

pub mod bench;
pub mod cli;
pub mod diagnose;
pub mod drift;
pub mod errors;
pub mod exec;
pub mod fastpath;
pub mod fault;
pub mod impair;
pub mod inspect;
pub mod kbtf;
pub mod metrics;
pub mod netlink;
pub mod netns;
pub mod ovs;
pub mod privileges;
pub mod probe;
pub mod progress;
pub mod safefs;
pub mod save;
pub mod schemas;
pub mod topology;
pub mod trace;
pub mod wire;
