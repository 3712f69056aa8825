//! Local filesystem driver.
//!
//! Durability: `put` writes a sibling temporary file, fsyncs it, renames it over the target and
//! fsyncs the directory; `rename` fsyncs the destination directory. Temporary files carry a
//! `.tmp-` infix and are never reachable through a registry path because the service never asks
//! for such names.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{check_path, BlobReader, FileInfo, FileWriter, Result, StorageDriver, StorageError};

/// How [`ReadNow`] reads without blocking, found on its first call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NowMode {
    Untried,
    /// `preadv2(RWF_NOWAIT)`: the page cache only (ext4, xfs, btrfs, …).
    NoWait,
    /// tmpfs has no `RWF_NOWAIT`, and needs none: its pages are memory.
    Memory,
    /// Neither: every read goes to a blocking thread.
    Never,
}

/// Reads of a file's data that is already in memory, on the caller's (async) thread: what
/// spares a blocking-pool hand-off (two thread wake-ups) per chunk. Used by this driver's
/// readers and by the mirror's readers of a growing fill file.
#[derive(Debug)]
pub struct ReadNow(NowMode);

impl Default for ReadNow {
    fn default() -> Self {
        Self(NowMode::Untried)
    }
}

impl ReadNow {
    /// Reads from `file`'s offset (and advances it) what can be had without waiting for the
    /// device: `Some(Ok(n))`, `n` = 0 at the end; `None` when the read would block or the file
    /// system cannot tell (then read on a blocking thread).
    pub fn read(&mut self, file: &mut File, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        use rustix::io::{Errno, ReadWriteFlags};
        match self.0 {
            NowMode::Never => None,
            NowMode::Memory => Some(file.read(buf)),
            NowMode::Untried | NowMode::NoWait => {
                // `u64::MAX`: read at, and advance, the file's own offset.
                let result = rustix::io::preadv2(
                    &*file,
                    &mut [std::io::IoSliceMut::new(buf)],
                    u64::MAX,
                    ReadWriteFlags::NOWAIT,
                );
                match result {
                    Ok(n) => {
                        self.0 = NowMode::NoWait;
                        Some(Ok(n))
                    }
                    Err(Errno::AGAIN) => {
                        self.0 = NowMode::NoWait;
                        None
                    }
                    Err(Errno::OPNOTSUPP) if self.0 == NowMode::Untried => {
                        self.0 = if is_tmpfs(file) {
                            NowMode::Memory
                        } else {
                            NowMode::Never
                        };
                        self.read(file, buf)
                    }
                    Err(_) => {
                        // Let the blocking read meet (and report) whatever this was.
                        self.0 = NowMode::Never;
                        None
                    }
                }
            }
        }
    }
}

/// A stored file being read ([`ReadNow`] for what is in memory).
struct FsReader {
    file: File,
    now: ReadNow,
}

impl std::io::Read for FsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

impl BlobReader for FsReader {
    fn read_now(&mut self, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        self.now.read(&mut self.file, buf)
    }
}

/// `TMPFS_MAGIC` of `<linux/magic.h>`.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Whether `file` lives on tmpfs.
fn is_tmpfs(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|s| {
        #[allow(clippy::unnecessary_cast)] // `f_type`'s type differs between targets
        let magic = s.f_type as i64;
        magic == TMPFS_MAGIC
    })
}

/// Filesystem-backed [`StorageDriver`] rooted at a directory.
#[derive(Debug, Clone)]
pub struct FsDriver {
    root: PathBuf,
}

impl FsDriver {
    /// Creates the root directory if needed.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs_err::create_dir_all(&root)
            .map_err(|e| StorageError::io(&root.display().to_string(), e))?;
        Ok(Self { root })
    }

    /// The directory this driver stores into.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> Result<PathBuf> {
        check_path(path)?;
        Ok(self.root.join(path))
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates the missing ancestors of `full` and fsyncs the parent of each one created, so a new
/// directory entry survives a crash as surely as the file written into it.
fn ensure_parent(full: &Path) -> std::io::Result<()> {
    let Some(parent) = full.parent() else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = parent;
    while !cur.is_dir() {
        missing.push(cur);
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    std::fs::create_dir_all(parent)?;
    for dir in missing.iter().rev() {
        if let Some(p) = dir.parent() {
            sync_dir(p)?;
        }
    }
    Ok(())
}

impl StorageDriver for FsDriver {
    fn get(&self, path: &str) -> Result<Vec<u8>> {
        let full = self.full(path)?;
        std::fs::read(full).map_err(|e| StorageError::io(path, e))
    }

    fn put(&self, path: &str, data: &[u8]) -> Result<()> {
        let full = self.full(path)?;
        let io = |e| StorageError::io(path, e);
        ensure_parent(&full).map_err(io)?;
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = full.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &full)?;
            sync_dir(full.parent().unwrap_or(&self.root))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    fn reader(&self, path: &str, offset: u64) -> Result<Box<dyn BlobReader>> {
        let full = self.full(path)?;
        let mut f = File::open(full).map_err(|e| StorageError::io(path, e))?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| StorageError::io(path, e))?;
        }
        Ok(Box::new(FsReader {
            file: f,
            now: ReadNow::default(),
        }))
    }

    fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>> {
        let full = self.full(path)?;
        let io = |e| StorageError::io(path, e);
        ensure_parent(&full).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(&full)
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(Box::new(FsWriter {
            path: path.to_owned(),
            out: file,
            size,
        }))
    }

    fn stat(&self, path: &str) -> Result<FileInfo> {
        let full = self.full(path)?;
        let m = std::fs::metadata(full).map_err(|e| StorageError::io(path, e))?;
        Ok(FileInfo {
            size: if m.is_dir() { 0 } else { m.len() },
            modified: m.modified().map_err(|e| StorageError::io(path, e))?,
            is_dir: m.is_dir(),
        })
    }

    fn list(&self, path: &str) -> Result<Vec<String>> {
        let full = self.full(path)?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(full).map_err(|e| StorageError::io(path, e))? {
            let entry = entry.map_err(|e| StorageError::io(path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.contains(".tmp-") {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let src = self.full(from)?;
        let dst = self.full(to)?;
        ensure_parent(&dst).map_err(|e| StorageError::io(to, e))?;
        std::fs::rename(&src, &dst).map_err(|e| StorageError::io(from, e))?;
        sync_dir(dst.parent().unwrap_or(&self.root)).map_err(|e| StorageError::io(to, e))
    }

    fn truncate(&self, path: &str, size: u64) -> Result<()> {
        let full = self.full(path)?;
        let f = OpenOptions::new()
            .write(true)
            .open(full)
            .map_err(|e| StorageError::io(path, e))?;
        f.set_len(size)
            .and_then(|()| f.sync_data())
            .map_err(|e| StorageError::io(path, e))
    }

    fn delete(&self, path: &str) -> Result<()> {
        let full = self.full(path)?;
        let meta = std::fs::symlink_metadata(&full).map_err(|e| StorageError::io(path, e))?;
        let r = if meta.is_dir() {
            std::fs::remove_dir_all(&full)
        } else {
            std::fs::remove_file(&full)
        };
        r.map_err(|e| StorageError::io(path, e))
    }
}

/// Unbuffered: the upload path hands over ~1 MiB batches written with one `writev`.
struct FsWriter {
    path: String,
    out: File,
    size: u64,
}

impl Write for FsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let n = self.out.write_vectored(bufs)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl FileWriter for FsWriter {
    fn size(&self) -> u64 {
        self.size
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.out
            .sync_data()
            .map_err(|e| StorageError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_driver_passes_the_shared_suite() {
        let dir = tempfile::tempdir().unwrap();
        let driver = FsDriver::new(dir.path().join("root")).unwrap();
        crate::storage::testsuite::run_all(&driver);
    }

    /// `read_now` serves the page cache (ext4 here: `RWF_NOWAIT`) and tmpfs on the caller's
    /// thread, from the reader's offset on, mixing with blocking reads, and says when it ends.
    #[test]
    fn read_now_reads_cached_data_from_the_readers_offset() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        for dir in &dirs {
            let driver = FsDriver::new(dir.path().join("root")).unwrap();
            driver.put("blobs/x/data", &data).unwrap();
            let mut r = driver.reader("blobs/x/data", 1000).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65_536];
            // Just written, so in memory: served without blocking.
            let n = r
                .read_now(&mut buf)
                .expect("cached data is read now")
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
            // A blocking read continues where it stopped, and so does the next `read_now`.
            let n = r.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            loop {
                match r.read_now(&mut buf) {
                    Some(Ok(0)) => break,
                    Some(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    Some(Err(e)) => panic!("{e}"),
                    None => {
                        let n = r.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                }
            }
            assert_eq!(got, data[1000..], "in {}", dir.path().display());
        }
    }

    #[test]
    fn put_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let driver = FsDriver::new(dir.path()).unwrap();
        driver.put("a/b", b"1").unwrap();
        driver.put("a/b", b"2").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["b".to_owned()]);
    }
}
