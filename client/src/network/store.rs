//! Networks as `berth network` knows them: the predefined `bridge` (the host bridge
//! [`super::BRIDGE`]), `host` and `none`, and user-defined bridge networks.
//!
//! ```text
//! <data-root>/networks/<id>.json     a user network's definition ([`Definition`])
//! <data-root>/networks/lock          flock: creating and removing (names stay unique)
//! /run/berth/network/<bridge>.json   its addresses and DNS names while up ([`super::ipam`])
//! /run/berth/network/subnets.lock    flock: picking a subnet and making a bridge, host-wide
//! ```
//!
//! A definition outlives reboots (it is the user's object, like Docker's); its bridge
//! (`berth-` and 9 hex digits of the ID: every Berth bridge matches `berth+`, which the
//! isolation rules use) is made at `network create` and again on first use after a reboot,
//! and deleted with its iptables chains by `network rm`. The subnet is picked at create time
//! among [`subnets`] that no host route overlaps (the new bridge's own route then keeps
//! later picks, by any data root, off it).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::network::{self as net, Subnet};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::ipam::IpamFile;
use crate::procfs::ProcessId;

/// A network's definition (the fields of Docker's `network inspect` that Berth has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Definition {
    /// `my-net`.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// The subnet (`10.90.0.0/16`); none for `host` and `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The bridge's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// The subnet was given (`--subnet`) rather than picked: Docker takes `--ip` only then.
    #[serde(default)]
    pub user_subnet: bool,
    /// `--internal`: no route out, no MASQUERADE.
    #[serde(default)]
    pub internal: bool,
    /// `--attachable` (recorded).
    #[serde(default)]
    pub attachable: bool,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-o/--opt` (recorded).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The Linux bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

impl Definition {
    /// One of `bridge`, `host`, `none`.
    #[must_use]
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    /// The subnet, parsed.
    #[must_use]
    pub fn subnet(&self) -> Option<Subnet> {
        self.subnet.as_deref().and_then(|s| s.parse().ok())
    }

    /// Its allocation file (bridge networks).
    #[must_use]
    pub fn ipam(&self) -> Option<IpamFile> {
        self.bridge
            .as_deref()
            .map(|b| IpamFile::new(Path::new(super::RUN_DIR), b))
    }

    /// IDs of the containers attached now (their owner runs).
    #[must_use]
    pub fn endpoints(&self) -> Vec<(Ipv4Addr, String)> {
        self.ipam().map_or_else(Vec::new, |f| {
            f.read()
                .allocations
                .into_iter()
                .filter(|(_, a)| a.owner.as_ref().is_some_and(ProcessId::alive))
                .map(|(ip, a)| (ip, a.container))
                .collect()
        })
    }
}

/// The networks every host has.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// Candidate subnets of user networks, in order: `10.90.0.0/16` to `10.127.0.0/16`, then
/// `192.168.216.0/24` to `192.168.255.0/24` (berth0 takes 10.84-10.87; Docker's pools are
/// 172.17-31 and 192.168.0-240/20; podman's 10.88-89).
#[must_use]
pub fn subnets() -> Vec<Subnet> {
    (90..=127)
        .map(|b| Subnet::of(Ipv4Addr::new(10, b, 0, 0), 16))
        .chain((216..=255).map(|c| Subnet::of(Ipv4Addr::new(192, 168, c, 0), 24)))
        .collect()
}

fn dir(data_root: &Path) -> PathBuf {
    data_root.join("networks")
}

/// A stable ID for a predefined network.
fn predefined_id(name: &str) -> String {
    hex::encode(sha2::Sha256::digest(format!("berth-network:{name}")))
}

/// The predefined network `name`.
#[must_use]
pub fn predefined(name: &str) -> Definition {
    let (driver, subnet, gateway, bridge) = match name {
        "bridge" => {
            let recorded = IpamFile::new(Path::new(super::RUN_DIR), super::BRIDGE)
                .read()
                .subnet();
            (
                "bridge",
                recorded.map(|s| s.to_string()),
                recorded.map(Subnet::gateway),
                Some(super::BRIDGE.to_owned()),
            )
        }
        "host" => ("host", None, None, None),
        _ => ("null", None, None, None),
    };
    Definition {
        name: name.to_owned(),
        id: predefined_id(name),
        created: String::new(),
        driver: driver.to_owned(),
        subnet,
        gateway,
        user_subnet: false,
        internal: false,
        attachable: false,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        bridge,
    }
}

/// The user networks of `data_root`.
#[must_use]
pub fn list_user(data_root: &Path) -> Vec<Definition> {
    let mut out: Vec<Definition> = fs_err::read_dir(dir(data_root))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| fs_err::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a: &Definition, b| a.name.cmp(&b.name));
    out
}

/// Every network: the predefined ones and the user's, by name.
#[must_use]
pub fn list(data_root: &Path) -> Vec<Definition> {
    let mut out: Vec<Definition> = PREDEFINED.iter().map(|n| predefined(n)).collect();
    out.extend(list_user(data_root));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Why a network could not be found or made.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing by that name or ID.
    #[error("network {0} not found")]
    NotFound(String),
    /// An ID prefix matching several.
    #[error("network {0} is ambiguous ({1} matches found based on ID prefix)")]
    Ambiguous(String, usize),
}

/// The network named `key`, or with that ID or unique ID prefix (Docker's order).
///
/// # Errors
/// None or several match.
pub fn find(data_root: &Path, key: &str) -> Result<Definition, StoreError> {
    let all = list(data_root);
    if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
        return Ok(n.clone());
    }
    let by_prefix: Vec<&Definition> = all
        .iter()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match by_prefix.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(StoreError::NotFound(key.to_owned())),
        many => Err(StoreError::Ambiguous(key.to_owned(), many.len())),
    }
}

/// Holds `<data-root>/networks/lock`.
fn lock(data_root: &Path) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    lock_file(&dir(data_root).join("lock"))
}

fn lock_file(path: &Path) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) {
            Ok(l) => return Ok(l),
            Err((back, nix::errno::Errno::EINTR)) => file = back,
            Err((_, e)) => {
                return Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The name.
    pub name: String,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-o/--opt`.
    pub options: BTreeMap<String, String>,
}

/// Docker's network name rule (`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Creates a user network: picks (or checks) its subnet, makes its bridge and rules, and
/// records it.
///
/// # Errors
/// Docker's messages for a taken name, a bad or overlapping subnet, a gateway outside it;
/// the bridge or iptables could not be set up.
pub fn create(data_root: &Path, opts: &CreateOptions) -> anyhow::Result<Definition> {
    if !valid_name(&opts.name) {
        anyhow::bail!(
            "Error response from daemon: invalid network name \"{}\": only \
             [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            opts.name
        );
    }
    let _names = lock(data_root)?;
    if find(data_root, &opts.name).is_ok_and(|n| n.name == opts.name) {
        anyhow::bail!(
            "Error response from daemon: network with name {} already exists",
            opts.name
        );
    }
    let asked: Option<Subnet> = opts
        .subnet
        .as_deref()
        .map(|s| {
            s.parse::<Subnet>()
                .map_err(|e| anyhow::anyhow!("Error response from daemon: {e}"))
        })
        .transpose()?;
    if let (Some(s), Some(raw)) = (asked, opts.subnet.as_deref()) {
        if raw.split('/').next() != Some(&s.network.to_string()) {
            anyhow::bail!(
                "Error response from daemon: invalid pool request: Pool {raw} is not a \
                 network address (did you mean {s}?)"
            );
        }
    }
    let gateway: Option<Ipv4Addr> = opts
        .gateway
        .as_deref()
        .map(|g| {
            g.parse()
                .map_err(|_| anyhow::anyhow!("invalid argument \"{g}\" for \"--gateway\" flag"))
        })
        .transpose()?;
    if gateway.is_some() && asked.is_none() {
        anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let id = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let bridge = format!("berth-{}", &id[..9]);
    // Host-wide: no two networks (of any data root) pick the same free subnet.
    let _subnets = lock_file(&Path::new(super::RUN_DIR).join("subnets.lock"))?;
    let routes = net::host_routes();
    let subnet = match asked {
        Some(s) => {
            if routes.iter().any(|(r, _)| r.overlaps(s)) {
                anyhow::bail!(
                    "Error response from daemon: Pool overlaps with other one on this address \
                     space"
                );
            }
            s
        }
        None => net::pick_subnet(&subnets(), &routes, &bridge).ok_or_else(|| {
            anyhow::anyhow!(
                "Error response from daemon: could not find an available, non-overlapping \
                 IPv4 address pool among the defaults to assign to the network"
            )
        })?,
    };
    let gateway = gateway.unwrap_or_else(|| subnet.gateway());
    if !subnet.contains(gateway) || gateway == subnet.network || gateway == subnet.broadcast() {
        anyhow::bail!("Error response from daemon: no matching subnet for gateway {gateway}");
    }
    let def = Definition {
        name: opts.name.clone(),
        id,
        created: crate::timestamp::now_rfc3339(),
        driver: "bridge".to_owned(),
        subnet: Some(subnet.to_string()),
        gateway: Some(gateway),
        user_subnet: asked.is_some(),
        internal: opts.internal,
        attachable: opts.attachable,
        labels: opts.labels.clone(),
        options: opts.options.clone(),
        bridge: Some(bridge.clone()),
    };
    // berth0's rules gain the isolation from user networks (a bridge set up by an older
    // Berth has the old ones).
    net::refresh_default_rules(super::BRIDGE)
        .with_context(|| format!("cannot update the rules of `{}`", super::BRIDGE))?;
    if let Err(e) = net::setup_network_bridge(&bridge, subnet, gateway, opts.internal) {
        let _ = net::remove_network_bridge(&bridge);
        return Err(anyhow::Error::new(e).context(format!(
            "cannot set up the bridge `{bridge}` of network {}",
            opts.name
        )));
    }
    if let Some(f) = def.ipam() {
        f.update(|ipam| {
            ipam.subnet = Some(subnet.to_string());
            ipam.reserved = Some(gateway);
            Ok(())
        })?;
    }
    let path = dir(data_root).join(format!("{}.json", def.id));
    let tmp = dir(data_root).join(format!(".{}.json.tmp", def.id));
    fs_err::write(&tmp, serde_json::to_vec_pretty(&def)?)?;
    fs_err::rename(&tmp, path)?;
    Ok(def)
}

/// Why a network was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// `bridge`, `host`, `none`.
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    /// Containers are attached.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse {
        /// The name.
        name: String,
        /// The ID.
        id: String,
    },
    /// The rest.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Removes user network `def` (refused while containers are attached): its bridge, chains,
/// allocation file and definition.
///
/// # Errors
/// A predefined network, one in use, the file system.
pub fn remove(data_root: &Path, def: &Definition) -> Result<(), RemoveError> {
    if def.is_predefined() {
        return Err(RemoveError::Predefined(def.name.clone()));
    }
    let _names = lock(data_root)?;
    let Some(bridge) = def.bridge.clone() else {
        return Err(anyhow::anyhow!("network {} has no bridge", def.name).into());
    };
    let file = IpamFile::new(Path::new(super::RUN_DIR), &bridge);
    // Under the allocation lock: no container attaches meanwhile.
    file.update(|ipam| {
        if ipam
            .allocations
            .values()
            .any(|a| a.owner.as_ref().is_some_and(ProcessId::alive))
        {
            return Err(RemoveError::InUse {
                name: def.name.clone(),
                id: def.id.clone(),
            }
            .into());
        }
        net::remove_network_bridge(&bridge)
            .with_context(|| format!("cannot delete the bridge `{bridge}`"))?;
        fs_err::remove_file(dir(data_root).join(format!("{}.json", def.id)))?;
        Ok(())
    })
    .map_err(|e| match e.downcast::<RemoveError>() {
        Ok(r) => r,
        Err(e) => RemoveError::Other(e),
    })?;
    let _ = fs_err::remove_file(file.path());
    let _ = fs_err::remove_file(Path::new(super::RUN_DIR).join(format!("{bridge}.lock")));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["a", "my-net", "net_1.x", "0net"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-net", "my net", "a/b", ".x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn predefined_networks_have_stable_ids_and_lookups_follow_docker() {
        let t = tempfile::tempdir().unwrap();
        let all = list(t.path());
        let names: Vec<_> = all.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["bridge", "host", "none"]);
        assert_eq!(all[2].driver, "null");
        assert_eq!(predefined("host").id, predefined("host").id);
        assert_eq!(find(t.path(), "host").unwrap().name, "host");
        let id = predefined("none").id;
        assert_eq!(find(t.path(), &id[..10]).unwrap().name, "none");
        assert!(matches!(
            find(t.path(), "nope"),
            Err(StoreError::NotFound(_))
        ));
        let bridge_name = format!("berth-{}", &id[..9]);
        assert!(bridge_name.len() <= 15);
    }

    #[test]
    fn candidate_subnets_avoid_berth0_docker_and_podman() {
        let all = subnets();
        let taken: Vec<Subnet> = ["10.84.0.0/14", "172.16.0.0/12", "10.88.0.0/15"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(all.iter().all(|s| !taken.iter().any(|t| t.overlaps(*s))));
        assert_eq!(all[0].to_string(), "10.90.0.0/16");
    }
}
