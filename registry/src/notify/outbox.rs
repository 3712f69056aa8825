//! One endpoint's durable queue: a directory with one JSON file per event, named so that
//! listing order is publication order (`<unix-nanos>-<counter>.json`), across restarts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::event::Event;

/// `<index>-<first 12 hex of sha256(url)>`: a changed URL starts a fresh outbox.
#[must_use]
pub fn endpoint_dir_name(index: usize, url: &str) -> String {
    use sha2::Digest as _;
    let h = hex::encode(sha2::Sha256::digest(url.as_bytes()));
    format!("{index}-{}", &h[..12])
}

/// See the module doc.
pub struct Outbox {
    dir: PathBuf,
    /// Position of the endpoint in the configuration (the metrics label).
    pub index: usize,
    max_pending: u64,
    pending: AtomicU64,
    counter: AtomicU64,
    /// Serializes pushes with the overflow check.
    push_lock: Mutex<()>,
    /// Wakes the delivery task.
    pub wake: tokio::sync::Notify,
}

impl Outbox {
    /// Opens (creating) the directory and counts what is already waiting.
    ///
    /// # Errors
    /// When the directory cannot be created or read.
    pub fn open(dir: PathBuf, index: usize, max_pending: u64) -> std::io::Result<Self> {
        fs_err::create_dir_all(&dir)?;
        let pending = names(&dir)?.len() as u64;
        crate::metrics::global().notifications_pending(index, pending);
        Ok(Self {
            dir,
            index,
            max_pending,
            pending: AtomicU64::new(pending),
            counter: AtomicU64::new(0),
            push_lock: Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Writes the event (temporary file, then rename), dropping the oldest past `max_pending`.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn push(&self, event: &Event) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        let _g = self
            .push_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.pending.load(Ordering::Relaxed) >= self.max_pending {
            let all = names(&self.dir)?;
            // Drop at least 1% at once, so a full outbox is not listed on every push.
            let excess = (all.len() as u64 + 1)
                .saturating_sub(self.max_pending)
                .max(self.max_pending / 100)
                .max(1);
            for n in all
                .iter()
                .take(usize::try_from(excess).unwrap_or(usize::MAX))
            {
                let _ = fs_err::remove_file(self.dir.join(n));
                crate::metrics::global().notification(self.index, "dropped");
            }
            self.pending
                .store((all.len() as u64).saturating_sub(excess), Ordering::Relaxed);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos:020}-{n:010}.json");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs_err::write(&tmp, &bytes)?;
        fs_err::rename(&tmp, self.dir.join(&name))?;
        let p = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
        crate::metrics::global().notifications_pending(self.index, p);
        self.wake.notify_one();
        Ok(())
    }

    /// The oldest `max` events: `(file name, JSON bytes)`.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn peek(&self, max: usize) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for n in names(&self.dir)?.into_iter().take(max) {
            match fs_err::read(self.dir.join(&n)) {
                Ok(b) if serde_json::from_slice::<serde_json::Value>(&b).is_ok() => {
                    out.push((n, b))
                }
                // Torn or unreadable (a crash mid-write never leaves one, but be safe): skip it.
                Ok(_) => {
                    let _ = fs_err::remove_file(self.dir.join(&n));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes delivered events.
    pub fn remove(&self, delivered: &[String]) {
        for n in delivered {
            if fs_err::remove_file(self.dir.join(n)).is_ok() {
                self.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
        crate::metrics::global()
            .notifications_pending(self.index, self.pending.load(Ordering::Relaxed));
    }
}

fn names(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut v: Vec<String> = fs_err::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    v.sort();
    Ok(v)
}
