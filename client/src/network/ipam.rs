//! Address management for the bridge: which container holds which address.
//!
//! The bridge is one per host, shared by every data root, so its allocations live beside it
//! rather than in a data root: `/run/berth/network/berth0.json` (tmpfs: it goes at reboot,
//! with the bridge), rewritten atomically while holding an exclusive `flock` on
//! `berth0.lock`, which also serializes setting up the bridge. Each allocation names the
//! container and the process that owns it (the detached monitor or the foreground `run`, by
//! PID and start time): an address whose owner is gone is free again, so a crash leaks
//! nothing. Addresses are handed out in order after the last one given (wrapping), like
//! Docker's, so a released address is not reused at once.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::network::Subnet;
use serde::{Deserialize, Serialize};

use crate::procfs::ProcessId;

/// One address in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Allocation {
    /// Container ID.
    pub container: String,
    /// The process that owns the container; the address is free once it is gone.
    pub owner: Option<ProcessId>,
    /// Names the embedded DNS server answers with this address (user networks: the
    /// container's name, `--network-alias`es, host name, short ID), lower case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// The allocation file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    /// The bridge's subnet (`10.87.0.0/16`), once chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// An address never handed out (a user network's `--gateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Ipv4Addr>,
    /// The last address handed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Ipv4Addr>,
    /// Addresses in use.
    #[serde(default)]
    pub allocations: BTreeMap<Ipv4Addr, Allocation>,
}

impl Ipam {
    /// The recorded subnet, if any and well formed.
    #[must_use]
    pub fn subnet(&self) -> Option<Subnet> {
        self.subnet.as_deref().and_then(|s| s.parse().ok())
    }

    /// Allocates `ip` (`--ip`) for `container`, as [`Ipam::allocate`] does; `None` when
    /// another live owner holds it, it is the gateway, or it is outside `subnet`.
    pub fn allocate_at(
        &mut self,
        subnet: Subnet,
        ip: Ipv4Addr,
        container: &str,
        owner: Option<ProcessId>,
        alive: &dyn Fn(&ProcessId) -> bool,
    ) -> Option<Ipv4Addr> {
        self.clear_for(subnet, container, alive);
        let free = subnet.contains(ip)
            && Some(ip) != self.reserved
            && ip != subnet.gateway()
            && !self.allocations.contains_key(&ip);
        free.then(|| self.take(ip, container, owner))
    }

    /// Releases `container`'s address and drops allocations outside `subnet` or of dead owners.
    fn clear_for(&mut self, subnet: Subnet, container: &str, alive: &dyn Fn(&ProcessId) -> bool) {
        self.release(container);
        self.allocations
            .retain(|ip, a| subnet.contains(*ip) && a.owner.as_ref().is_some_and(alive));
    }

    /// Records `ip` as `container`'s.
    fn take(&mut self, ip: Ipv4Addr, container: &str, owner: Option<ProcessId>) -> Ipv4Addr {
        self.allocations.insert(
            ip,
            Allocation {
                container: container.to_owned(),
                owner,
                names: Vec::new(),
            },
        );
        ip
    }

    /// Gives `container` an address of `subnet` (its previous one is released first), after
    /// dropping allocations whose owner `alive` says is gone. `None` when the subnet is full.
    pub fn allocate(
        &mut self,
        subnet: Subnet,
        container: &str,
        owner: Option<ProcessId>,
        alive: &dyn Fn(&ProcessId) -> bool,
    ) -> Option<Ipv4Addr> {
        self.clear_for(subnet, container, alive);
        let first = u32::from(subnet.gateway()) + 1;
        let last = u32::from(subnet.broadcast()) - 1;
        let size = last.checked_sub(first)? + 1;
        let start = self
            .last
            .map(u32::from)
            .filter(|l| (first..=last).contains(l))
            .map_or(first, |l| if l == last { first } else { l + 1 });
        let ip = (0..size)
            .map(|i| Ipv4Addr::from(first + (start - first + i) % size))
            .find(|ip| !self.allocations.contains_key(ip) && Some(*ip) != self.reserved)?;
        self.last = Some(self.take(ip, container, owner));
        Some(ip)
    }

    /// The address of the live container answering to `name` (lower case), for DNS.
    #[must_use]
    pub fn lookup(&self, name: &str, alive: &dyn Fn(&ProcessId) -> bool) -> Option<Ipv4Addr> {
        self.allocations
            .iter()
            .find(|(_, a)| a.names.iter().any(|n| n == name) && a.owner.as_ref().is_some_and(alive))
            .map(|(ip, _)| *ip)
    }

    /// Frees the address of `container`; whether it had one.
    pub fn release(&mut self, container: &str) -> bool {
        let before = self.allocations.len();
        self.allocations.retain(|_, a| a.container != container);
        self.allocations.len() != before
    }
}

/// Where the allocation file of `bridge` lives.
#[derive(Debug, Clone)]
pub struct IpamFile {
    dir: PathBuf,
    bridge: String,
}

impl IpamFile {
    /// The file of `bridge` under `dir` (normally [`super::RUN_DIR`]).
    #[must_use]
    pub fn new(dir: &Path, bridge: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            bridge: bridge.to_owned(),
        }
    }

    /// The JSON file.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.bridge))
    }

    /// Reads the file as it is now (no lock): for display and tests.
    #[must_use]
    pub fn read(&self) -> Ipam {
        fs_err::read(self.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Locks the file, reads it, lets `change` edit it, writes it back and unlocks.
    ///
    /// # Errors
    /// The directory or lock cannot be made; `change`'s error (nothing is written then).
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Ipam) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        use std::io::Write as _;
        fs_err::create_dir_all(&self.dir)?;
        let lock_path = self.dir.join(format!("{}.lock", self.bridge));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open `{}`", lock_path.display()))?;
        let _lock = lock(file).with_context(|| format!("cannot lock `{}`", lock_path.display()))?;
        let mut ipam = self.read();
        let before = ipam.clone();
        let out = change(&mut ipam)?;
        if ipam != before {
            let tmp = self.dir.join(format!(".{}.json.tmp", self.bridge));
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&ipam)?)?;
            fs_err::rename(&tmp, self.path())?;
        }
        Ok(out)
    }
}

fn lock(mut f: std::fs::File) -> nix::Result<nix::fcntl::Flock<std::fs::File>> {
    loop {
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
            Ok(l) => return Ok(l),
            Err((back, nix::errno::Errno::EINTR)) => f = back,
            Err((_, e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: i32) -> Option<ProcessId> {
        Some(ProcessId { pid, start: 1 })
    }

    fn subnet(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_handed_out_in_order_and_released() {
        let s = subnet("10.87.0.0/16");
        let mut ipam = Ipam::default();
        let alive = |_: &ProcessId| true;
        let a = ipam.allocate(s, "a", owner(1), &alive).unwrap();
        let b = ipam.allocate(s, "b", owner(1), &alive).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 87, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 87, 0, 3));
        assert!(ipam.release("a"));
        assert!(!ipam.release("a"));
        // Not reused at once: the next one comes after the last given.
        let c = ipam.allocate(s, "c", owner(1), &alive).unwrap();
        assert_eq!(c, Ipv4Addr::new(10, 87, 0, 4));
        // Allocating again for the same container replaces its address.
        let c2 = ipam.allocate(s, "c", owner(1), &alive).unwrap();
        assert_eq!(c2, Ipv4Addr::new(10, 87, 0, 5));
        assert_eq!(ipam.allocations.len(), 2);
    }

    #[test]
    fn a_fixed_address_is_taken_once_and_the_gateway_never() {
        let s = subnet("10.88.0.0/24");
        let mut ipam = Ipam::default();
        let alive = |_: &ProcessId| true;
        let want = Ipv4Addr::new(10, 88, 0, 77);
        assert_eq!(ipam.allocate_at(s, want, "a", owner(1), &alive), Some(want));
        assert_eq!(ipam.allocate_at(s, want, "b", owner(2), &alive), None);
        // The same container again (a restart): the address is its own.
        assert_eq!(ipam.allocate_at(s, want, "a", owner(1), &alive), Some(want));
        assert_eq!(
            ipam.allocate_at(s, Ipv4Addr::new(10, 88, 0, 1), "c", owner(1), &alive),
            None
        );
        assert_eq!(
            ipam.allocate_at(s, Ipv4Addr::new(10, 89, 0, 5), "c", owner(1), &alive),
            None
        );
        // A dead owner's fixed address is free again.
        let dead = |p: &ProcessId| p.pid != 1;
        assert_eq!(ipam.allocate_at(s, want, "b", owner(2), &dead), Some(want));
    }

    #[test]
    fn small_subnets_wrap_skip_the_gateway_and_broadcast_and_fill_up() {
        // .0 network, .1 gateway, .2-.6 hosts, .7 broadcast.
        let s = subnet("192.168.50.0/29");
        let mut ipam = Ipam::default();
        let alive = |_: &ProcessId| true;
        let got: Vec<_> = (0..5)
            .map(|i| ipam.allocate(s, &i.to_string(), owner(1), &alive).unwrap())
            .collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(192, 168, 50, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(192, 168, 50, 6)));
        assert_eq!(ipam.allocate(s, "full", owner(1), &alive), None);
        ipam.release("1");
        // Wraps around to the only free one.
        assert_eq!(
            ipam.allocate(s, "x", owner(1), &alive),
            Some(Ipv4Addr::new(192, 168, 50, 3))
        );
    }

    #[test]
    fn addresses_of_dead_owners_are_reclaimed() {
        let s = subnet("10.87.0.0/16");
        let mut ipam = Ipam::default();
        let all = |_: &ProcessId| true;
        ipam.allocate(s, "dead", owner(7), &all).unwrap();
        ipam.allocate(s, "live", owner(8), &all).unwrap();
        ipam.allocate(s, "orphan", None, &all).unwrap();
        let only_8 = |p: &ProcessId| p.pid == 8;
        ipam.allocate(s, "new", owner(8), &only_8).unwrap();
        let holders: Vec<_> = ipam
            .allocations
            .values()
            .map(|a| a.container.as_str())
            .collect();
        assert_eq!(holders, ["live", "new"]);
    }

    #[test]
    fn concurrent_allocations_get_distinct_addresses() {
        let t = tempfile::tempdir().unwrap();
        let file = IpamFile::new(t.path(), "br0");
        let s = subnet("10.87.0.0/16");
        // Each update opens the lock file anew, so threads contend like processes do.
        let got: Vec<Ipv4Addr> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let file = file.clone();
                    scope.spawn(move || {
                        (0..10)
                            .map(|j| {
                                file.update(|ipam| {
                                    Ok(ipam
                                        .allocate(s, &format!("{i}-{j}"), owner(1), &|_| true)
                                        .unwrap())
                                })
                                .unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::BTreeSet<_> = got.iter().collect();
        assert_eq!(unique.len(), 80);
        assert_eq!(file.read().allocations.len(), 80);
    }

    #[test]
    fn the_file_round_trips_under_its_lock() {
        let t = tempfile::tempdir().unwrap();
        let file = IpamFile::new(&t.path().join("net"), "br0");
        let ip = file
            .update(|ipam| {
                ipam.subnet = Some("10.87.0.0/16".into());
                Ok(ipam.allocate(subnet("10.87.0.0/16"), "c", owner(1), &|_| true))
            })
            .unwrap();
        assert_eq!(ip, Some(Ipv4Addr::new(10, 87, 0, 2)));
        let read = file.read();
        assert_eq!(read.subnet(), Some(subnet("10.87.0.0/16")));
        assert_eq!(
            read.allocations[&Ipv4Addr::new(10, 87, 0, 2)].container,
            "c"
        );
        // A failing change writes nothing.
        let err = file.update(|ipam| -> anyhow::Result<()> {
            ipam.allocations.clear();
            anyhow::bail!("no")
        });
        assert!(err.is_err());
        assert_eq!(file.read().allocations.len(), 1);
    }
}
