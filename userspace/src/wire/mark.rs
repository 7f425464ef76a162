//! Ownership marks: every object vethscope makes carries its lab's name, in the kernel
//! object itself, so cleanup never depends on the state file alone and never touches
//! an object someone else made.
//! - interfaces: the interface alias `vethscope:LAB` (`ip link` shows it);
//! - namespaces: the alias of the namespace's `lo`;
//! - OVS bridges, ports and interfaces: `external_ids:vethscope-lab=LAB`.

pub const ALIAS_PREFIX: &str = "vethscope:";
pub const OVS_KEY: &str = "vethscope-lab";

pub fn alias(lab: &str) -> String {
    format!("{ALIAS_PREFIX}{lab}")
}

/// The lab named by an alias, if the alias is one of ours.
pub fn lab_of(alias: Option<&str>) -> Option<&str> {
    alias?.strip_prefix(ALIAS_PREFIX)
}
