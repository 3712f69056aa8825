//! A [`StorageDriver`] wrapper timing every call into `registry_storage_action_seconds`.

use std::time::Instant;

use crate::storage::{BlobReader, FileInfo, FileWriter, Result, StorageDriver};

/// Times the calls of the driver it wraps (opening a reader or writer counts, streaming not).
pub struct TimedDriver<D>(pub D);

fn timed<T>(action: &'static str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    super::global().storage_action(action, start.elapsed());
    r
}

impl<D: StorageDriver> StorageDriver for TimedDriver<D> {
    fn get(&self, path: &str) -> Result<Vec<u8>> {
        timed("get", || self.0.get(path))
    }
    fn put(&self, path: &str, data: &[u8]) -> Result<()> {
        timed("put", || self.0.put(path, data))
    }
    fn reader(&self, path: &str, offset: u64) -> Result<Box<dyn BlobReader>> {
        timed("reader", || self.0.reader(path, offset))
    }
    fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>> {
        timed("writer", || self.0.writer(path, append))
    }
    fn stat(&self, path: &str) -> Result<FileInfo> {
        timed("stat", || self.0.stat(path))
    }
    fn list(&self, path: &str) -> Result<Vec<String>> {
        timed("list", || self.0.list(path))
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        timed("move", || self.0.rename(from, to))
    }
    fn truncate(&self, path: &str, size: u64) -> Result<()> {
        timed("truncate", || self.0.truncate(path, size))
    }
    fn delete(&self, path: &str) -> Result<()> {
        timed("delete", || self.0.delete(path))
    }
}
