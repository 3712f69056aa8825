//! Reading an archive's tar stream into [`Contents`]: every regular file is kept in memory
//! (small files and JSON documents, within a budget) or streamed into the store's verified blob
//! ingestion, and only its cleaned name is kept, as a key. Tar paths are never used as file
//! system paths. Refused: `..`, absolute names, names under a link (symlink-then-write),
//! duplicates, links leading outside the archive, and devices, FIFOs and other special entries.

use std::collections::HashMap;
use std::io::{Read, Write};

use oci_spec::image::Digest;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{put_blob, sha256_digest, ArchiveError, HashingWriter, NewBlobs, Result};
use crate::store::Store;

/// Files up to this size are kept in memory whatever they hold.
const SMALL_FILE: u64 = 64 << 10;
/// JSON documents up to this size are kept in memory.
const JSON_FILE: u64 = 4 << 20;
/// Memory for all kept files together; beyond it files go to the store.
const MEMORY_BUDGET: u64 = 256 << 20;
/// Largest config or manifest read back from the store.
const DOCUMENT_MAX: u64 = 64 << 20;
/// Links followed before giving up (a loop).
const MAX_LINK_HOPS: usize = 32;

pub(super) enum Body {
    Memory(Vec<u8>),
    Stored,
}

pub(super) struct ArchiveFile {
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) head: Vec<u8>,
    pub(super) body: Body,
}

/// The archive's files by cleaned name, and its links.
pub(super) struct Contents<'s> {
    pub(super) store: &'s Store,
    pub(super) files: HashMap<String, ArchiveFile>,
    pub(super) links: HashMap<String, String>,
}

fn read_err(source: std::io::Error) -> ArchiveError {
    ArchiveError::Read { source }
}

pub(super) fn refuse(entry: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::UnsafeEntry {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

/// A tar name as clean `/`-joined components; refuses `..` and absolute names.
pub(super) fn clean(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(refuse(raw, "absolute path"));
    }
    let mut parts = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err(refuse(raw, "`..` in path (path traversal)")),
            p if p.contains('\0') => return Err(refuse(raw, "NUL in path")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A symlink's target, relative to the link's directory, as an archive name; refuses targets
/// that are absolute or climb out of the archive.
fn link_target(name: &str, raw: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(refuse(raw, format!("symlink to absolute path `{target}`")));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(refuse(
                        raw,
                        format!("symlink `{target}` leaves the archive"),
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

pub(super) fn read_entries<'s>(
    store: &'s Store,
    new: &mut NewBlobs<'_>,
    reader: impl Read,
) -> Result<Contents<'s>> {
    let mut contents = Contents {
        store,
        files: HashMap::new(),
        links: HashMap::new(),
    };
    let mut memory = 0u64;
    let mut archive = tar::Archive::new(reader);
    let tar_err = |source| ArchiveError::Tar { source };
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|e| refuse(&String::from_utf8_lossy(e.as_bytes()), "name is not UTF-8"))?;
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            continue;
        }
        let name = clean(&raw)?;
        if name.is_empty() {
            continue;
        }
        // Nothing may be written through a link (symlink-then-write).
        let mut prefix = String::new();
        for part in name.split('/') {
            if !prefix.is_empty() {
                if contents.links.contains_key(&prefix) {
                    return Err(refuse(
                        &raw,
                        format!("path goes through the link `{prefix}`"),
                    ));
                }
                prefix.push('/');
            }
            prefix.push_str(part);
        }
        let taken = contents.files.contains_key(&name) || contents.links.contains_key(&name);
        match kind {
            tar::EntryType::Directory => {
                if taken {
                    return Err(refuse(&raw, "a directory replaces a file or link"));
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if taken {
                    return Err(refuse(&raw, "duplicate entry"));
                }
                let file = read_file(store, new, &mut entry, &raw, &mut memory)?;
                contents.files.insert(name, file);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if taken {
                    return Err(refuse(&raw, "duplicate entry"));
                }
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(&raw, "link without a target"))?;
                let target = std::str::from_utf8(&target)
                    .map_err(|_| refuse(&raw, "link target is not UTF-8"))?
                    .to_owned();
                let resolved = if kind == tar::EntryType::Symlink {
                    link_target(&name, &raw, &target)?
                } else {
                    clean(&target).map_err(|_| {
                        refuse(&raw, format!("hard link to `{target}` leaves the archive"))
                    })?
                };
                contents.links.insert(name, resolved);
            }
            other => {
                return Err(refuse(
                    &raw,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        }
    }
    Ok(contents)
}

fn read_file<R: Read>(
    store: &Store,
    new: &mut NewBlobs<'_>,
    entry: &mut tar::Entry<'_, R>,
    raw: &str,
    memory: &mut u64,
) -> Result<ArchiveFile> {
    let size = entry.size();
    let truncated = |got: u64| ArchiveError::Truncated {
        entry: raw.to_owned(),
        got,
        expected: size,
    };
    let mut head = vec![0u8; 8192];
    let n = fill(entry, &mut head)?;
    head.truncate(n);
    let json = head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    let in_memory =
        (size <= SMALL_FILE || (json && size <= JSON_FILE)) && *memory + size <= MEMORY_BUDGET;
    if in_memory {
        let mut data = head.clone();
        entry.read_to_end(&mut data).map_err(read_err)?;
        if data.len() as u64 != size {
            return Err(truncated(data.len() as u64));
        }
        *memory += size;
        head.truncate(16);
        return Ok(ArchiveFile {
            digest: sha256_digest(Sha256::digest(&data).as_slice()),
            size,
            head,
            body: Body::Memory(data),
        });
    }
    let mut blob = HashingWriter::new(store.ingest(None)?);
    let copied = (|| {
        blob.write_all(&head)
            .map_err(|source| ArchiveError::Write { source })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = fill(entry, &mut buf)?;
            if k == 0 {
                return Ok(());
            }
            blob.write_all(&buf[..k])
                .map_err(|source| ArchiveError::Write { source })?;
        }
    })();
    if let Err(e) = copied {
        blob.inner.discard();
        return Err(e);
    }
    if blob.written != size {
        let got = blob.written;
        blob.inner.discard();
        return Err(truncated(got));
    }
    let digest = blob.digest();
    let existed = store.has_blob(&digest);
    let stored = blob.inner.commit()?;
    new.note(&stored, existed);
    head.truncate(16);
    Ok(ArchiveFile {
        digest: stored,
        size,
        head,
        body: Body::Stored,
    })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    Ok(n)
}

impl Contents<'_> {
    /// Follows links from a clean name to a file's name.
    pub(super) fn resolve(&self, name: &str) -> Option<String> {
        let mut cur = name.to_owned();
        for _ in 0..MAX_LINK_HOPS {
            if self.files.contains_key(&cur) {
                return Some(cur);
            }
            // A link may also be a parent component of the name (`<id>/` → `<other>/`).
            let mut next = None;
            let mut prefix = String::new();
            for (i, part) in cur.split('/').enumerate() {
                if i > 0 {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if let Some(target) = self.links.get(&prefix) {
                    let rest = &cur[prefix.len()..];
                    next = Some(format!("{target}{rest}").trim_matches('/').to_owned());
                    break;
                }
            }
            cur = next?;
        }
        None
    }

    /// The file a metadata document names, verified against its `blobs/<alg>/<hex>` name.
    pub(super) fn get(&self, path: &str, referenced_by: &str) -> Result<(String, &ArchiveFile)> {
        let name = clean(path)?;
        let resolved = self.resolve(&name).ok_or_else(|| ArchiveError::Missing {
            path: path.to_owned(),
            referenced_by: referenced_by.to_owned(),
        })?;
        let file = &self.files[&resolved];
        if let Some(named) = blob_digest(&resolved) {
            if named != file.digest {
                return Err(ArchiveError::DigestMismatch {
                    path: resolved,
                    expected: named.to_string(),
                    actual: file.digest.to_string(),
                });
            }
        }
        Ok((resolved, file))
    }

    /// The blob a descriptor names, checked against its digest and size.
    pub(super) fn descriptor(
        &self,
        desc: &Value,
        referenced_by: &str,
    ) -> Result<(String, &ArchiveFile)> {
        let invalid = |reason: &str| ArchiveError::Invalid {
            path: referenced_by.to_owned(),
            what: "OCI descriptor",
            reason: reason.to_owned(),
        };
        let digest: Digest = desc["digest"]
            .as_str()
            .ok_or_else(|| invalid("no `digest`"))?
            .parse()
            .map_err(|_| invalid("`digest` is not a valid digest"))?;
        let path = format!("blobs/{}/{}", digest.algorithm().as_ref(), digest.digest());
        let (resolved, file) = self.get(&path, referenced_by)?;
        if let Some(size) = desc["size"].as_u64() {
            if size != file.size {
                return Err(ArchiveError::SizeMismatch {
                    path: resolved,
                    expected: size,
                    actual: file.size,
                });
            }
        }
        Ok((resolved, file))
    }

    /// A (small) document's bytes.
    pub(super) fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        let f = &self.files[name];
        match &f.body {
            Body::Memory(d) => Ok(d.clone()),
            Body::Stored if f.size > DOCUMENT_MAX => Err(ArchiveError::Invalid {
                path: name.to_owned(),
                what: "document",
                reason: format!("{} bytes is too large for a manifest or config", f.size),
            }),
            Body::Stored => Ok(self.store.read_blob(&f.digest)?),
        }
    }

    pub(super) fn json(&self, name: &str, what: &'static str) -> Result<Value> {
        serde_json::from_slice(&self.bytes(name)?).map_err(|source| ArchiveError::Json {
            path: name.to_owned(),
            what,
            source,
        })
    }

    /// Makes sure a file is a stored blob; returns its digest.
    pub(super) fn materialize(&self, name: &str, new: &mut NewBlobs<'_>) -> Result<Digest> {
        let f = &self.files[name];
        match &f.body {
            Body::Memory(d) => put_blob(self.store, new, d),
            Body::Stored => Ok(f.digest.clone()),
        }
    }
}

/// `blobs/sha256/<hex>` → its digest.
fn blob_digest(name: &str) -> Option<Digest> {
    let rest = name.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("a/b", "a/b")]
    #[case("./a//b/", "a/b")]
    #[case("./", "")]
    fn clean_names(#[case] raw: &str, #[case] want: &str) {
        assert_eq!(clean(raw).unwrap(), want);
    }

    #[rstest]
    #[case("../x")]
    #[case("a/../../x")]
    #[case("/etc/passwd")]
    fn hostile_names(#[case] raw: &str) {
        assert!(matches!(clean(raw), Err(ArchiveError::UnsafeEntry { .. })));
    }

    #[rstest]
    #[case("a/layer.tar", "../b/layer.tar", Some("b/layer.tar"))]
    #[case("a/layer.tar", "../../x", None)]
    #[case("a/layer.tar", "/etc/passwd", None)]
    fn symlink_targets(#[case] name: &str, #[case] target: &str, #[case] want: Option<&str>) {
        assert_eq!(link_target(name, name, target).ok().as_deref(), want);
    }
}
