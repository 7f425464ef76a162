//! What every named namespace holds, read once per namespace on the thread pool: its
//! owner (the mark on its `lo`), its links, and — when asked — its addresses. `down`,
//! `down --all`, `show` and the preflight use it instead of opening a connection per
//! namespace and asking one question at a time.

use super::mark;
use crate::{
    netlink::{LinkInfo, NetlinkError, batch::BatchSocket},
    netns::{self, NetnsError},
    topology::Cidr,
};

#[derive(Debug, thiserror::Error)]
pub enum CensusError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// One namespace as read from the kernel.
#[derive(Debug, Default)]
pub struct NsFacts {
    pub name: String,
    /// False for a file that holds no namespace (an `up` killed before the mount).
    pub mounted: bool,
    pub links: Vec<LinkInfo>,
    /// Filled only for the namespaces the caller asked addresses of.
    pub addresses: Vec<(u32, Cidr)>,
}

impl NsFacts {
    /// The lab named by the mark on `lo`.
    pub fn owner(&self) -> Option<&str> {
        let lo = self.links.iter().find(|l| l.name == "lo")?;
        mark::lab_of(lo.alias.as_deref())
    }

    /// Nothing but `lo`: what `up` leaves if killed right after creating the namespace.
    pub fn is_bare(&self) -> bool {
        self.links.iter().all(|l| l.name == "lo")
    }
}

/// Reads every namespace in `names`: one link dump each, and one address dump for those
/// `with_addresses` accepts (given the namespace's facts so far).
pub fn read(
    names: &[String],
    with_addresses: impl Fn(&NsFacts) -> bool + Sync,
) -> Vec<Result<NsFacts, CensusError>> {
    netns::pool::map(names, |name| {
        let mut facts = NsFacts {
            name: name.clone(),
            mounted: netns::is_mounted(name),
            ..Default::default()
        };
        if !facts.mounted {
            return Ok(facts);
        }
        netns::enter(name)?;
        let mut sock = BatchSocket::open_here(name)?;
        facts.links = sock.links()?;
        if with_addresses(&facts) {
            facts.addresses = sock.addresses()?;
        }
        Ok(facts)
    })
}

/// The owner of each namespace in `names` that could be read (others: `None`).
pub fn owners(names: &[String]) -> Vec<Option<String>> {
    read(names, |_| false)
        .into_iter()
        .map(|r| r.ok().and_then(|f| f.owner().map(str::to_string)))
        .collect()
}
