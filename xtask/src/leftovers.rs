//! Objects the tests must not leave behind: `vst*` network namespaces, interfaces whose
//! ifalias starts with `vethscope:`, anything under /sys/fs/bpf/vethscope.
//!
//! Test namespaces always count. Interfaces and pins that existed before the tests (say,
//! a lab the developer has up) are reported but only new ones count.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::util;

const NETNS_PREFIX: &str = "vst";
const ALIAS_PREFIX: &str = "vethscope:";
const PIN_ROOT: &str = "/sys/fs/bpf/vethscope";

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Netns,
    Interface,
    Pin,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leftover {
    kind: Kind,
    what: String,
    cleanup: String,
}

pub type Leftovers = BTreeSet<Leftover>;

pub fn scan() -> Result<Leftovers> {
    let mut found = Leftovers::new();
    found.extend(test_namespaces()?);
    found.extend(tagged_interfaces()?);
    found.extend(pins()?);
    Ok(found)
}

pub fn warn_preexisting(before: &Leftovers) {
    if before.is_empty() {
        return;
    }
    eprintln!(
        "warning: vethscope objects exist before the tests (test namespaces will fail the run):"
    );
    print_list(before.iter());
}

/// Fails loudly if the tests left anything behind.
pub fn check(before: &Leftovers) -> Result<()> {
    let after = scan()?;
    let left: Vec<&Leftover> = after
        .iter()
        .filter(|item| item.kind == Kind::Netns || !before.contains(*item))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    eprintln!();
    eprintln!(
        "!!!!!!!! the tests left {} object(s) behind !!!!!!!!",
        left.len()
    );
    print_list(left.iter().copied());
    bail!(
        "the tests left {} object(s) behind (listed above)",
        left.len()
    )
}

fn print_list<'a>(items: impl Iterator<Item = &'a Leftover>) {
    for item in items {
        eprintln!("  - {:<50} cleanup: {}", item.what, item.cleanup);
    }
}

/// `ip netns list` lines: `NAME` or `NAME (id: N)`.
fn test_namespaces() -> Result<Vec<Leftover>> {
    let list = util::stdout_of(Command::new("ip").args(["netns", "list"]))?;
    Ok(list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(NETNS_PREFIX))
        .map(|name| Leftover {
            kind: Kind::Netns,
            what: format!("network namespace {name}"),
            cleanup: format!("ip netns del {name}"),
        })
        .collect())
}

/// Interfaces of this namespace whose /sys/class/net/IF/ifalias starts with `vethscope:`.
fn tagged_interfaces() -> Result<Vec<Leftover>> {
    let entries = fs::read_dir("/sys/class/net").context("could not list /sys/class/net")?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Interfaces can vanish while we look; no alias file means no alias.
        let Ok(alias) = fs::read_to_string(entry.path().join("ifalias")) else {
            continue;
        };
        let alias = alias.trim();
        if alias.starts_with(ALIAS_PREFIX) {
            found.push(Leftover {
                kind: Kind::Interface,
                what: format!("interface {name} (alias {alias})"),
                cleanup: format!("ip link del {name}"),
            });
        }
    }
    Ok(found)
}

/// Pinned objects and empty directories below /sys/fs/bpf/vethscope.
fn pins() -> Result<Vec<Leftover>> {
    let root = Path::new(PIN_ROOT);
    let mut leaves = Vec::new();
    if root.is_dir() {
        collect_leaves(root, &mut leaves)?;
    }
    Ok(leaves
        .into_iter()
        .filter(|path| path != root)
        .map(|path| Leftover {
            kind: Kind::Pin,
            what: format!("pinned {}", path.display()),
            cleanup: format!("rm -r {}", path.display()),
        })
        .collect())
}

/// Files (pinned maps, programs, links) and empty directories at or below `path`.
fn collect_leaves(path: &Path, leaves: &mut Vec<PathBuf>) -> Result<()> {
    if !path.is_dir() {
        leaves.push(path.to_owned());
        return Ok(());
    }
    let entries =
        fs::read_dir(path).with_context(|| format!("could not list {}", path.display()))?;
    let children: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    if children.is_empty() {
        leaves.push(path.to_owned());
    }
    for child in children {
        collect_leaves(&child, leaves)?;
    }
    Ok(())
}
