//! Per-registry TLS trust, as Docker configures it: for a registry `HOST[:PORT]`, the directory
//! `certs.d/HOST[:PORT]/` may hold CA certificates (`*.crt`, e.g. `ca.crt`) that are trusted for
//! it besides the system roots, and a client certificate (`NAME.cert` with `NAME.key`) for mutual
//! TLS. berth looks in `/etc/berth/certs.d` (or `$BERTH_CERTS_DIR`) first, then Docker's
//! `/etc/docker/certs.d`, so a private registry a Docker host already trusts works as is.
//!
//! Owns only reading those files; [`super::client`] builds the HTTP client from them (the CA
//! roots, and the client certificate it presents when the server asks for one).

use std::path::{Path, PathBuf};

use super::error::{RemoteError, Result};

/// Where berth's own registry certificates live (`BERTH_CERTS_DIR` overrides it).
pub const BERTH_CERTS_DIR: &str = "/etc/berth/certs.d";
/// Docker's registry certificates.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

/// What a registry's certificates directory gives.
pub struct HostCerts {
    /// The directory.
    pub dir: PathBuf,
    /// Extra CA roots.
    pub roots: Vec<reqwest::Certificate>,
    /// A client certificate and its key.
    pub identity: Option<reqwest::Identity>,
}

/// The directories searched, in order.
#[must_use]
pub fn search_dirs() -> Vec<PathBuf> {
    let own = std::env::var_os("BERTH_CERTS_DIR")
        .map_or_else(|| PathBuf::from(BERTH_CERTS_DIR), PathBuf::from);
    vec![own, PathBuf::from(DOCKER_CERTS_DIR)]
}

/// The certificates for `host` (`HOST[:PORT]`) from the first directory that has a folder for
/// it; `None` when none does.
///
/// # Errors
/// A certificate or key that cannot be read or parsed, or a `.cert` without its `.key`.
pub fn for_host(host: &str) -> Result<Option<HostCerts>> {
    // A host name cannot hold a path: `..` or `/` would leave the directory.
    if host.is_empty() || host.contains('/') || host.contains("..") {
        return Ok(None);
    }
    for base in search_dirs() {
        let dir = base.join(host);
        if dir.is_dir() {
            return load(&dir).map(Some);
        }
    }
    Ok(None)
}

fn bad(path: &Path, reason: impl ToString) -> RemoteError {
    RemoteError::Certificates {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn load(dir: &Path) -> Result<HostCerts> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut roots = Vec::new();
    let mut identity = None;
    for path in &entries {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = std::fs::read(path).map_err(|e| bad(path, e))?;
                let certs =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(path, e))?;
                if certs.is_empty() {
                    return Err(bad(path, "no PEM certificate in it"));
                }
                roots.extend(certs);
            }
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.exists() {
                    return Err(bad(
                        path,
                        format!(
                            "missing key `{}` for this client certificate",
                            key.display()
                        ),
                    ));
                }
                let mut pem = std::fs::read(path).map_err(|e| bad(path, e))?;
                pem.push(b'\n');
                pem.extend(std::fs::read(&key).map_err(|e| bad(&key, e))?);
                identity = Some(reqwest::Identity::from_pem(&pem).map_err(|e| bad(path, e))?);
            }
            Some("key") if !path.with_extension("cert").exists() => {
                return Err(bad(path, "a key without its `.cert` client certificate"));
            }
            _ => {}
        }
    }
    Ok(HostCerts {
        dir: dir.to_owned(),
        roots,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_none_and_bad_files_are_named() {
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("BERTH_CERTS_DIR", t.path());
        assert!(for_host("reg.test:5000").unwrap().is_none());
        assert!(for_host("../etc").unwrap().is_none());
        let d = t.path().join("reg.test:5000");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ca.crt"), "not a certificate").unwrap();
        let e = for_host("reg.test:5000").err().unwrap().to_string();
        assert!(e.contains("ca.crt"), "{e}");
        std::fs::remove_file(d.join("ca.crt")).unwrap();
        std::fs::write(d.join("client.cert"), "x").unwrap();
        let e = for_host("reg.test:5000").err().unwrap().to_string();
        assert!(e.contains("missing key"), "{e}");
        std::env::remove_var("BERTH_CERTS_DIR");
    }
}
