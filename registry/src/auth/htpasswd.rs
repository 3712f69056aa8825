//! htpasswd files (bcrypt entries only, as `htpasswd -B` and the CNCF registry write them), the
//! cache of recently verified credentials, and the atomic rewrite behind `user add`/`user rm`.
//!
//! bcrypt costs ~50–100 ms a check by design. A Basic client sends its password on every
//! request, so successful checks are remembered for [`CACHE_TTL`] under an HMAC of user and
//! password with a key made at start (the cache never holds a password or a fast hash of one);
//! an entry counts only while the user's htpasswd line is unchanged. Failures are never cached.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;

use super::AuthError;

/// How long a verified password is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Entries kept at most.
const CACHE_MAX: usize = 10_000;
/// bcrypt cost of `user add` (~60 ms a check on this class of machine).
pub const BCRYPT_COST: u32 = 10;

/// Users and their bcrypt hashes.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    /// Reads `path`. Lines that are not `name:$2…` are skipped with a warning.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = fs_err::read_to_string(path).map_err(|source| AuthError::File {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::parse(&text, path))
    }

    fn parse(text: &str, path: &Path) -> Self {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, hash)) if hash.starts_with("$2") && !user.is_empty() => {
                    users.insert(user.to_owned(), hash.to_owned());
                }
                _ => tracing::warn!(
                    path = %path.display(),
                    line = i + 1,
                    "htpasswd entry skipped: only bcrypt entries (`htpasswd -B`) are accepted"
                ),
            }
        }
        Self { users }
    }

    /// The hash of `user`.
    #[must_use]
    pub fn hash(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// Number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there is no user.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Recently verified credentials, keyed by HMAC(user, password).
pub struct CredentialCache {
    key: hmac::Key,
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
}

struct Entry {
    user: String,
    hash: String,
    at: Instant,
}

impl CredentialCache {
    /// An empty cache with a fresh random key.
    #[must_use]
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        Self {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system random"),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn tag(&self, user: &str, password: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    /// Checks `user`/`password` against `users`: from the cache when a check of the same pair
    /// succeeded within [`CACHE_TTL`] and the entry is unchanged, else with bcrypt (on the
    /// blocking pool).
    pub async fn verify(&self, users: &Htpasswd, user: &str, password: &str) -> bool {
        let Some(hash) = users.hash(user) else {
            // Same cost as a wrong password, so user names cannot be probed by timing.
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let pw = password.to_owned();
            let _ = tokio::task::spawn_blocking(move || {
                let dummy = DUMMY.get_or_init(|| {
                    bcrypt::hash("berth-registry", BCRYPT_COST).unwrap_or_default()
                });
                bcrypt::verify(pw, dummy)
            })
            .await;
            return false;
        };
        let tag = self.tag(user, password);
        {
            let entries = self.entries.lock().expect("cache lock");
            if let Some(e) = entries.get(&tag) {
                if e.user == user && e.hash == hash && e.at.elapsed() < CACHE_TTL {
                    return true;
                }
            }
        }
        let (pw, h) = (password.to_owned(), hash.to_owned());
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            let mut entries = self.entries.lock().expect("cache lock");
            if entries.len() >= CACHE_MAX {
                entries.retain(|_, e| e.at.elapsed() < CACHE_TTL);
                if entries.len() >= CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(
                tag,
                Entry {
                    user: user.to_owned(),
                    hash: hash.to_owned(),
                    at: Instant::now(),
                },
            );
        }
        ok
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Adds or replaces `user` in the htpasswd file at `path` (created, mode 0600, if missing).
///
/// # Errors
/// When the name is invalid or the file cannot be read or written.
pub fn add_user(path: &Path, user: &str, password: &str) -> Result<(), AuthError> {
    if user.is_empty() || user.contains([':', '\n', '\r']) || user.trim() != user {
        return Err(AuthError::Invalid(format!(
            "`{user}` is not a valid user name (no `:`, newlines or surrounding spaces)"
        )));
    }
    if password.is_empty() {
        return Err(AuthError::Invalid("the password is empty".into()));
    }
    let hash = bcrypt::hash(password, BCRYPT_COST)
        .map_err(|e| AuthError::Invalid(format!("bcrypt: {e}")))?;
    let mut lines = read_lines(path)?;
    let line = format!("{user}:{hash}");
    match lines
        .iter_mut()
        .find(|l| l.split_once(':').is_some_and(|(u, _)| u == user))
    {
        Some(existing) => *existing = line,
        None => lines.push(line),
    }
    write_atomic(path, &lines)
}

/// Removes `user`; `Ok(false)` when there was no such user.
///
/// # Errors
/// When the file cannot be read or written.
pub fn remove_user(path: &Path, user: &str) -> Result<bool, AuthError> {
    let mut lines = read_lines(path)?;
    let before = lines.len();
    lines.retain(|l| l.split_once(':').is_none_or(|(u, _)| u != user));
    if lines.len() == before {
        return Ok(false);
    }
    write_atomic(path, &lines)?;
    Ok(true)
}

fn read_lines(path: &Path) -> Result<Vec<String>, AuthError> {
    match fs_err::read_to_string(path) {
        Ok(t) => Ok(t.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(AuthError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `lines` to a temporary file beside `path` (0600), fsyncs it, renames it over `path`.
fn write_atomic(path: &Path, lines: &[String]) -> Result<(), AuthError> {
    let mut text = lines.join("\n");
    text.push('\n');
    super::write_private_file(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn add_verify_cache_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        add_user(&path, "alice", "s3cret").unwrap();
        add_user(&path, "bob", "pw").unwrap();
        add_user(&path, "alice", "new").unwrap();
        let users = Htpasswd::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        let cache = CredentialCache::new();
        assert!(cache.verify(&users, "alice", "new").await);
        assert!(!cache.verify(&users, "alice", "s3cret").await);
        assert!(!cache.verify(&users, "nobody", "new").await);
        let t = Instant::now();
        assert!(cache.verify(&users, "alice", "new").await);
        assert!(
            t.elapsed() < Duration::from_millis(5),
            "cached check was slow"
        );
        assert!(remove_user(&path, "alice").unwrap());
        assert!(!remove_user(&path, "alice").unwrap());
        let users = Htpasswd::load(&path).unwrap();
        assert!(
            !cache.verify(&users, "alice", "new").await,
            "removed user still cached"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn only_bcrypt_entries() {
        let h = Htpasswd::parse("a:$2y$05$x\nb:{SHA}abc\n# c\nc:$apr1$x\n", Path::new("f"));
        assert_eq!(h.len(), 1);
        assert!(h.hash("a").is_some());
    }
}
