//! One behavioural suite every storage driver must pass.

use std::io::{Read, Write};

use super::StorageDriver;

/// Runs every check against `d`, which must be empty.
pub fn run_all(d: &dyn StorageDriver) {
    put_get_replace(d);
    writer_append_and_reader_offset(d);
    stat_list_rename_delete(d);
    rejects_unclean_paths(d);
}

fn put_get_replace(d: &dyn StorageDriver) {
    assert!(d.get("x/missing").unwrap_err().is_not_found());
    d.put("x/file", b"hello").unwrap();
    assert_eq!(d.get("x/file").unwrap(), b"hello");
    d.put("x/file", b"bye").unwrap();
    assert_eq!(d.get("x/file").unwrap(), b"bye");
}

fn writer_append_and_reader_offset(d: &dyn StorageDriver) {
    let mut w = d.writer("w/data", false).unwrap();
    w.write_all(b"abc").unwrap();
    assert_eq!(w.size(), 3);
    w.commit().unwrap();
    let mut w = d.writer("w/data", true).unwrap();
    assert_eq!(w.size(), 3);
    w.write_all(b"def").unwrap();
    w.commit().unwrap();
    let mut s = String::new();
    d.reader("w/data", 2)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "cdef");
    d.truncate("w/data", 4).unwrap();
    assert_eq!(d.get("w/data").unwrap(), b"abcd");
    let w = d.writer("w/data", false).unwrap();
    assert_eq!(w.size(), 0, "non-append writer truncates");
    w.commit().unwrap();
}

fn stat_list_rename_delete(d: &dyn StorageDriver) {
    d.put("l/b", b"12").unwrap();
    d.put("l/a", b"1").unwrap();
    d.put("l/c/d", b"").unwrap();
    assert_eq!(d.list("l").unwrap(), vec!["a", "b", "c"]);
    assert_eq!(d.stat("l/b").unwrap().size, 2);
    assert!(d.stat("l/c").unwrap().is_dir);
    d.rename("l/b", "m/n/b").unwrap();
    assert!(d.stat("l/b").unwrap_err().is_not_found());
    assert_eq!(d.get("m/n/b").unwrap(), b"12");
    d.put("m/n/other", b"old").unwrap();
    d.rename("m/n/b", "m/n/other").unwrap();
    assert_eq!(d.get("m/n/other").unwrap(), b"12", "rename replaces");
    d.delete("l").unwrap();
    assert!(d.list("l").unwrap_err().is_not_found());
    assert!(d.delete("l").unwrap_err().is_not_found());
}

fn rejects_unclean_paths(d: &dyn StorageDriver) {
    for p in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a/."] {
        assert!(
            matches!(d.get(p), Err(super::StorageError::InvalidPath { .. })),
            "{p:?} must be rejected"
        );
        assert!(d.put(p, b"x").is_err());
    }
}
