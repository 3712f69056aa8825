//! Registry credentials in Docker's `config.json` format (`specs/docker-cli/cli-config-json.md`):
//!
//! ```json
//! {"auths": {"registry.example:5000": {"auth": "base64(user:pass)"}}}
//! ```
//!
//! `berth` writes its own file, `$BERTH_CONFIG_DIR/config.json` (default
//! `~/.berth/config.json`), and falls back to reading Docker's (`$DOCKER_CONFIG/config.json`,
//! default `~/.docker/config.json`) for registries it has no entry for; it never writes Docker's.
//! Docker Hub's key is `https://index.docker.io/v1/`. Credential helpers (`credsStore`,
//! `credHelpers`) are not run.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use fs_err::os::unix::fs::OpenOptionsExt as _;

use super::error::{RemoteError, Result};

/// The key Docker uses for Docker Hub in `auths`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A username and password (or token).
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    user: String,
    pass: String,
}

/// Loaded registry credentials: berth's own file first, Docker's as a read-only fallback.
#[derive(Clone, Default)]
pub struct Credentials {
    /// berth's file (written by [`Credentials::set`] and [`Credentials::remove`]).
    path: PathBuf,
    /// Docker's file, if one was read.
    docker_path: Option<PathBuf>,
    berth: BTreeMap<String, Entry>,
    docker: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Credentials")
            .field("path", &self.path)
            .field("docker_path", &self.docker_path)
            .field("berth_hosts", &self.berth.keys().collect::<Vec<_>>())
            .field("docker_hosts", &self.docker.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The user's home directory (`$HOME`, else the password database).
fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map_or_else(|| PathBuf::from("/"), |u| u.dir)
}

/// berth's credentials file: `$BERTH_CONFIG_DIR/config.json` or `~/.berth/config.json`.
#[must_use]
pub fn berth_config_path() -> PathBuf {
    std::env::var_os("BERTH_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| home().join(".berth"), PathBuf::from)
        .join("config.json")
}

/// Docker's: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
#[must_use]
pub fn docker_config_path() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map_or_else(|| home().join(".docker"), PathBuf::from)
        .join("config.json")
}

/// The `auths` key for a registry: Docker Hub's URL for Docker Hub, else `host[:port]`.
#[must_use]
pub fn auth_key(registry: &str) -> String {
    let host = normalize(registry);
    if super::is_docker_hub(&host) {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        host
    }
}

/// `https://host:port/path` -> `host:port`, Docker Hub aliases -> `docker.io` (as Docker's
/// `ConvertToHostname` does when matching keys).
fn normalize(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if super::is_docker_hub(&host) {
        super::DOCKER_HUB.to_owned()
    } else {
        host
    }
}

impl Credentials {
    /// Reads berth's file and Docker's (see the module doc); missing files are empty.
    ///
    /// # Errors
    /// A file that exists but cannot be read or parsed.
    pub fn load() -> Result<Self> {
        Self::load_from(berth_config_path(), Some(docker_config_path()))
    }

    /// Reads the given files: `path` is berth's own (read and written), `docker` a read-only
    /// fallback.
    ///
    /// # Errors
    /// berth's file exists but cannot be read or parsed (a broken Docker file is skipped).
    pub fn load_from(path: PathBuf, docker: Option<PathBuf>) -> Result<Self> {
        let berth = read_auths(&path)?;
        // Docker's file is not ours: a broken one is skipped rather than failing every pull.
        let docker_auths = match &docker {
            Some(p) => read_auths(p).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "ignoring Docker's credentials file");
                BTreeMap::new()
            }),
            None => BTreeMap::new(),
        };
        Ok(Self {
            path,
            docker_path: docker,
            berth,
            docker: docker_auths,
        })
    }

    /// berth's credentials file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The username and password for a registry (`host[:port]`, `docker.io` or any Docker Hub
    /// alias), from berth's file, else Docker's.
    #[must_use]
    pub fn get(&self, registry: &str) -> Option<(String, String)> {
        let want = normalize(registry);
        [&self.berth, &self.docker]
            .into_iter()
            .find_map(|map| {
                map.get(&auth_key(registry))
                    .or_else(|| map.iter().find(|(k, _)| normalize(k) == want).map(|e| e.1))
            })
            .map(|e| (e.user.clone(), e.pass.clone()))
    }

    /// The file the credentials for `registry` come from, if any.
    #[must_use]
    pub fn source(&self, registry: &str) -> Option<&Path> {
        let want = normalize(registry);
        if self.berth.keys().any(|k| normalize(k) == want) {
            Some(&self.path)
        } else if self.docker.keys().any(|k| normalize(k) == want) {
            self.docker_path.as_deref()
        } else {
            None
        }
    }

    /// Adds credentials in memory only (for a login attempt, or tests).
    pub fn insert(&mut self, registry: &str, user: &str, pass: &str) {
        self.berth.insert(
            auth_key(registry),
            Entry {
                user: user.to_owned(),
                pass: pass.to_owned(),
            },
        );
    }

    /// Stores credentials in berth's file: atomically (temporary file, fsync, rename), with
    /// mode 0600, keeping every other key of the file as it was.
    ///
    /// # Errors
    /// The file cannot be read, parsed or written.
    pub fn set(&mut self, registry: &str, user: &str, pass: &str) -> Result<()> {
        let key = auth_key(registry);
        let mut doc = read_doc(&self.path)?;
        let auths = auths_object(&mut doc, &self.path)?;
        let want = normalize(registry);
        auths.retain(|k, _| normalize(k) != want);
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        auths.insert(key.clone(), serde_json::json!({ "auth": encoded }));
        write_doc(&self.path, &doc)?;
        self.berth.retain(|k, _| normalize(k) != want);
        self.berth.insert(
            key,
            Entry {
                user: user.to_owned(),
                pass: pass.to_owned(),
            },
        );
        Ok(())
    }

    /// Removes a registry's entries from berth's file; false when it had none. Docker's file is
    /// never changed (see [`Credentials::source`]).
    ///
    /// # Errors
    /// The file cannot be read, parsed or written.
    pub fn remove(&mut self, registry: &str) -> Result<bool> {
        let want = normalize(registry);
        if !self.berth.keys().any(|k| normalize(k) == want) {
            return Ok(false);
        }
        let mut doc = read_doc(&self.path)?;
        let auths = auths_object(&mut doc, &self.path)?;
        auths.retain(|k, _| normalize(k) != want);
        write_doc(&self.path, &doc)?;
        self.berth.retain(|k, _| normalize(k) != want);
        Ok(true)
    }
}

fn cred_error(
    path: &Path,
    reason: impl Into<String>,
    source: Option<std::io::Error>,
) -> RemoteError {
    RemoteError::Credentials {
        path: path.to_owned(),
        reason: reason.into(),
        source,
    }
}

/// The whole document (an empty object when the file does not exist).
fn read_doc(path: &Path) -> Result<serde_json::Value> {
    match fs_err::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(serde_json::json!({})),
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| cred_error(path, format!("invalid JSON: {e}"), None))?;
            if v.is_object() {
                Ok(v)
            } else {
                Err(cred_error(
                    path,
                    "the top level must be a JSON object",
                    None,
                ))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(cred_error(path, "cannot read", Some(e))),
    }
}

fn auths_object<'a>(
    doc: &'a mut serde_json::Value,
    path: &Path,
) -> Result<&'a mut serde_json::Map<String, serde_json::Value>> {
    let obj = doc.as_object_mut().expect("read_doc returns objects");
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    auths
        .as_object_mut()
        .ok_or_else(|| cred_error(path, "`auths` must be an object", None))
}

fn read_auths(path: &Path) -> Result<BTreeMap<String, Entry>> {
    let doc = read_doc(path)?;
    let mut out = BTreeMap::new();
    let Some(auths) = doc.get("auths").and_then(serde_json::Value::as_object) else {
        return Ok(out);
    };
    for (key, v) in auths {
        if let Some(entry) = decode_entry(v) {
            out.insert(key.clone(), entry);
        } else {
            tracing::debug!(key, path = %path.display(), "credentials entry without usable `auth`; ignored");
        }
    }
    Ok(out)
}

fn decode_entry(v: &serde_json::Value) -> Option<Entry> {
    if let Some(auth) = v.get("auth").and_then(serde_json::Value::as_str) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, pass) = text.split_once(':')?;
        return Some(Entry {
            user: user.to_owned(),
            pass: pass.to_owned(),
        });
    }
    let user = v.get("username")?.as_str()?;
    let pass = v.get("password")?.as_str()?;
    Some(Entry {
        user: user.to_owned(),
        pass: pass.to_owned(),
    })
}

/// Writes `doc` to `path` atomically with mode 0600 (its directory 0700 when created).
fn write_doc(path: &Path, doc: &serde_json::Value) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.exists() {
        fs_err::create_dir_all(dir)
            .map_err(|e| cred_error(path, "cannot create its directory", Some(e)))?;
        let _ = fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut text = serde_json::to_vec_pretty(doc).expect("JSON values serialize");
    text.push(b'\n');
    let name = path.file_name().map_or_else(
        || "config.json".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        let mut f = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs_err::rename(&tmp, path)?;
        if let Ok(d) = fs_err::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs_err::remove_file(&tmp);
        cred_error(path, "cannot write", Some(e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_keep_other_keys_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b/config.json");
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"dTpw"}},"psFormat":"table {{.ID}}"}"#,
        )
        .unwrap();
        let docker = dir.path().join("d/config.json");
        fs_err::create_dir_all(docker.parent().unwrap()).unwrap();
        fs_err::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},"http://reg:5000/v2/":{"auth":"YTpiOmM="}}}"#,
        )
        .unwrap();
        let mut c = Credentials::load_from(path.clone(), Some(docker.clone())).unwrap();
        assert_eq!(c.get("other:1"), Some(("u".into(), "p".into())));
        assert_eq!(c.get("docker.io"), Some(("hub".into(), "secret".into())));
        assert_eq!(
            c.get("index.docker.io"),
            Some(("hub".into(), "secret".into()))
        );
        // Docker's keys with a scheme and path still match; the password may contain ':'.
        assert_eq!(c.get("reg:5000"), Some(("a".into(), "b:c".into())));
        assert_eq!(c.source("reg:5000"), Some(docker.as_path()));

        c.set("reg:5000", "me", "pw").unwrap();
        assert_eq!(c.get("reg:5000"), Some(("me".into(), "pw".into())));
        let doc: serde_json::Value = serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table {{.ID}}");
        assert_eq!(doc["auths"]["reg:5000"]["auth"], "bWU6cHc=");
        assert_eq!(doc["auths"]["other:1"]["auth"], "dTpw");
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Reloading sees the same.
        let c2 = Credentials::load_from(path.clone(), None).unwrap();
        assert_eq!(c2.get("reg:5000"), Some(("me".into(), "pw".into())));

        assert!(c.remove("reg:5000").unwrap());
        assert!(!c.remove("nowhere:1").unwrap());
        // Docker's entry is still there (never written).
        assert_eq!(c.get("reg:5000"), Some(("a".into(), "b:c".into())));
        let doc: serde_json::Value = serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
        assert!(doc["auths"].get("reg:5000").is_none());
        assert_eq!(doc["psFormat"], "table {{.ID}}");
    }

    #[test]
    fn docker_hub_uses_dockers_key_and_new_files_get_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/config.json");
        let mut c = Credentials::load_from(path.clone(), None).unwrap();
        assert_eq!(c.get("docker.io"), None);
        c.set("docker.io", "u", "p").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
        assert!(doc["auths"][DOCKER_HUB_AUTH_KEY]["auth"].is_string());
        assert_eq!(
            fs_err::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert!(format!("{c:?}").find('p').is_some() && !format!("{c:?}").contains("\"p\""));
    }

    #[test]
    fn garbage_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs_err::write(&path, "{nope").unwrap();
        let e = Credentials::load_from(path, None).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
    }
}
