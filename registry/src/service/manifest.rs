//! Manifests (end-3, end-7, end-9) and referrers (end-12).
//!
//! Accepted types: OCI image manifest and index, Docker schema 2 manifest and manifest list.
//! Each is stored byte-for-byte as a blob (its digest is of the exact bytes) with the media type
//! it was pushed with; schema 1 is refused.

use std::sync::Arc;

use bytes::Bytes;
use oci_spec::image::{
    Descriptor, Digest, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};

use super::cache::Cached;
use super::{paths, Registry, Result, ServiceError};
use crate::route::valid_tag;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// What a successful manifest PUT produced.
#[derive(Debug)]
pub struct PutManifest {
    /// Digest of the stored bytes.
    pub digest: Digest,
    /// The `subject` it refers to, if any (for `OCI-Subject`).
    pub subject: Option<Digest>,
    /// Tags now pointing at it.
    pub tags: Vec<String>,
}

/// A validated, parsed manifest.
#[allow(clippy::large_enum_variant)] // short-lived, one per request
enum Parsed {
    Manifest(ImageManifest),
    Index(ImageIndex),
}

impl Parsed {
    /// Digests this manifest references (config and layers, or index children).
    fn referenced(&self) -> Vec<Digest> {
        match self {
            Self::Manifest(m) => std::iter::once(m.config())
                .chain(m.layers().iter())
                .map(|d| d.digest().clone())
                .collect(),
            Self::Index(i) => i.manifests().iter().map(|d| d.digest().clone()).collect(),
        }
    }

    fn subject(&self) -> Option<&Descriptor> {
        match self {
            Self::Manifest(m) => m.subject().as_ref(),
            Self::Index(i) => i.subject().as_ref(),
        }
    }
}

fn invalid(reason: impl Into<String>) -> ServiceError {
    ServiceError::ManifestInvalid {
        reason: reason.into(),
    }
}

/// Decides the manifest's media type from the request's `Content-Type` and the document, and
/// parses it. Schema 1 and mismatches are refused.
fn parse_manifest(content_type: Option<&str>, bytes: &[u8]) -> Result<(String, Parsed)> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("manifest must be a JSON object"))?;
    let declared = obj.get("mediaType").and_then(serde_json::Value::as_str);
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty());
    let schema_version = obj.get("schemaVersion").and_then(serde_json::Value::as_u64);
    let schema1 = |t: Option<&str>| t.is_some_and(|t| DOCKER_SCHEMA1.contains(&t));
    if schema1(header) || schema1(declared) || schema_version == Some(1) {
        return Err(invalid(
            "Docker schema 1 manifests are not supported; push the image as Docker schema 2 or OCI (e.g. `skopeo copy --format v2s2`)",
        ));
    }
    if schema_version != Some(2) {
        return Err(invalid("manifest must have \"schemaVersion\": 2"));
    }
    let known = |t: &str| [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&t);
    let header = header.filter(|h| known(h));
    if let (Some(h), Some(d)) = (header, declared) {
        if h != d {
            return Err(invalid(format!(
                "manifest mediaType `{d}` does not match the Content-Type `{h}` it was pushed with"
            )));
        }
    }
    let media_type = match header.or(declared) {
        Some(t) if known(t) => t.to_owned(),
        Some(t) => {
            return Err(invalid(format!(
                "unsupported manifest media type `{t}`; accepted: {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_LIST}"
            )))
        }
        None if obj.contains_key("manifests") => OCI_INDEX.to_owned(),
        None if obj.contains_key("config") => OCI_MANIFEST.to_owned(),
        None => return Err(invalid("cannot tell the manifest type: no mediaType, config or manifests")),
    };
    let parsed = if is_index(&media_type) {
        Parsed::Index(
            serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("not a valid image index: {e}")))?,
        )
    } else {
        Parsed::Manifest(
            serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("not a valid image manifest: {e}")))?,
        )
    };
    Ok((media_type, parsed))
}

/// Validates a manifest as a PUT does before touching storage (media type, schema version,
/// shape); returns the media type it is stored with.
///
/// # Errors
/// `ManifestInvalid`, as [`Registry::put_manifest`].
#[doc(hidden)] // for the fuzz target (registry/fuzz)
pub fn validate_manifest(content_type: Option<&str>, bytes: &[u8]) -> Result<String> {
    parse_manifest(content_type, bytes).map(|(media_type, _)| media_type)
}

fn parse_link(bytes: &[u8]) -> Option<(Digest, String)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (d, t) = text.split_once('\n')?;
    Some((d.parse().ok()?, t.trim().to_owned()))
}

impl Registry {
    /// Stores a manifest (end-7a/7b) under `reference` (a tag or its digest) plus `extra_tags`.
    ///
    /// # Errors
    /// `ManifestTooLarge`, `ManifestInvalid`, `TagInvalid`, `DigestInvalid`,
    /// `ManifestBlobUnknown`, storage failures.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        content_type: Option<&str>,
        bytes: Bytes,
        extra_tags: &[String],
    ) -> Result<PutManifest> {
        let limit = self.config.max_manifest_bytes;
        if bytes.len() as u64 > limit {
            return Err(ServiceError::ManifestTooLarge { limit });
        }
        let by_digest = if reference.contains(':') {
            Some(
                crate::digest::parse(reference)
                    .map_err(|reason| ServiceError::DigestInvalid { reason })?,
            )
        } else {
            None
        };
        let mut tags = Vec::new();
        if by_digest.is_none() {
            tags.push(reference.to_owned());
        }
        tags.extend(extra_tags.iter().cloned());
        if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
            return Err(ServiceError::TagInvalid { tag: bad.clone() });
        }
        let (media_type, parsed) = parse_manifest(content_type, &bytes)?;
        let digest = match &by_digest {
            Some(d) => {
                let computed = crate::digest::of_bytes_like(d, &bytes);
                if computed != *d {
                    return Err(ServiceError::DigestInvalid {
                        reason: format!("manifest has digest {computed}, not {d} as in the URL"),
                    });
                }
                computed
            }
            None => crate::digest::sha256(&bytes),
        };
        // Under the GC gate: no sweep of what this manifest references can interleave with the
        // check below and the links written after it (see `crate::gc::gate`).
        let referenced = parsed.referenced();
        self.gc_gate
            .reference(referenced.iter().chain([&digest]), || {
                self.store_manifest(name, &tags, &media_type, &parsed, &digest, &bytes)
            })
    }

    fn store_manifest(
        &self,
        name: &str,
        tags: &[String],
        media_type: &str,
        parsed: &Parsed,
        digest: &Digest,
        bytes: &Bytes,
    ) -> Result<PutManifest> {
        let (digest, tags) = (digest.clone(), tags.to_vec());
        self.check_references(name, parsed)?;

        // Content, then the links that make it visible.
        let blob = paths::blob_data(&digest);
        if !self.exists(&blob)? {
            self.driver.put(&blob, bytes)?;
        }
        let link = format!("{digest}\n{media_type}");
        self.driver
            .put(&paths::revision_link(name, &digest), link.as_bytes())?;
        let subject = parsed.subject().map(|s| s.digest().clone());
        if let Some(subject) = &subject {
            let entry = self.referrer_descriptor(media_type, &digest, bytes.len() as u64, parsed);
            self.driver.put(
                &paths::referrer_entry(name, subject, &digest),
                &serde_json::to_vec(&entry).expect("serializable"),
            )?;
        }
        for tag in &tags {
            self.driver
                .put(&paths::tag_link(name, tag), digest.to_string().as_bytes())?;
        }
        self.manifests.invalidate(name);
        Ok(PutManifest {
            digest,
            subject,
            tags,
        })
    }

    fn check_references(&self, name: &str, parsed: &Parsed) -> Result<()> {
        // `sparse_manifests`: the spec lets a registry accept a manifest whose blobs or
        // children are absent (a mirror holds such manifests); off by default.
        if self.config.sparse_manifests {
            return Ok(());
        }
        let missing = |d: &Digest| ServiceError::ManifestBlobUnknown {
            name: name.to_owned(),
            digest: d.clone(),
        };
        match parsed {
            Parsed::Manifest(m) => {
                let blobs = std::iter::once(m.config()).chain(m.layers().iter());
                for desc in blobs {
                    // Non-distributable layers live elsewhere (their `urls`); don't require them.
                    if desc.urls().as_ref().is_some_and(|u| !u.is_empty()) {
                        continue;
                    }
                    if !self.exists(&paths::layer_link(name, desc.digest()))? {
                        return Err(missing(desc.digest()));
                    }
                }
            }
            Parsed::Index(i) => {
                for desc in i.manifests() {
                    if !self.exists(&paths::revision_link(name, desc.digest()))? {
                        return Err(missing(desc.digest()));
                    }
                }
            }
        }
        Ok(())
    }

    fn referrer_descriptor(
        &self,
        media_type: &str,
        digest: &Digest,
        size: u64,
        parsed: &Parsed,
    ) -> Descriptor {
        let mut d = Descriptor::new(MediaType::from(media_type), size, digest.clone());
        let (artifact_type, annotations) = match parsed {
            Parsed::Manifest(m) => (
                m.artifact_type()
                    .clone()
                    .or_else(|| Some(m.config().media_type().clone())),
                m.annotations().clone(),
            ),
            Parsed::Index(i) => (i.artifact_type().clone(), i.annotations().clone()),
        };
        d.set_artifact_type(artifact_type);
        d.set_annotations(annotations);
        d
    }

    /// Resolves a tag or digest in `name` (end-3).
    ///
    /// # Errors
    /// `ManifestUnknown` (also for a reference that is neither a valid tag nor a digest),
    /// storage failures.
    pub fn get_manifest(&self, name: &str, reference: &str) -> Result<Arc<Cached>> {
        if let Some(hit) = self.manifests.get(name, reference) {
            return Ok(hit);
        }
        let unknown = || ServiceError::ManifestUnknown {
            name: name.to_owned(),
            reference: reference.to_owned(),
        };
        // A reference that is neither a tag nor a digest names nothing that can exist: on reads
        // it is simply unknown (404, as the conformance suite checks with `.INVALID_MANIFEST_NAME`);
        // writes still refuse it as invalid.
        let digest = match self.resolve(name, reference) {
            Ok(d) => d.ok_or_else(unknown)?,
            Err(ServiceError::TagInvalid { .. } | ServiceError::DigestInvalid { .. }) => {
                return Err(unknown())
            }
            Err(e) => return Err(e),
        };
        let link = match self.driver.get(&paths::revision_link(name, &digest)) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let (_, media_type) = parse_link(&link).ok_or_else(unknown)?;
        let bytes = match self.driver.get(&paths::blob_data(&digest)) {
            Ok(b) => Bytes::from(b),
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let entry = Arc::new(Cached {
            digest,
            media_type,
            bytes,
        });
        self.manifests.insert(name, reference, entry.clone());
        Ok(entry)
    }

    /// Tag or digest to digest; `None` for an unknown tag.
    fn resolve(&self, name: &str, reference: &str) -> Result<Option<Digest>> {
        if reference.contains(':') {
            return crate::digest::parse(reference)
                .map(Some)
                .map_err(|reason| ServiceError::DigestInvalid { reason });
        }
        if !valid_tag(reference) {
            return Err(ServiceError::TagInvalid {
                tag: reference.to_owned(),
            });
        }
        match self.driver.get(&paths::tag_link(name, reference)) {
            Ok(b) => Ok(std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse().ok())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies the request's `Accept` list to a stored manifest. An index the client cannot take
    /// is replaced by its linux/amd64 child when the client takes single manifests (as the CNCF
    /// registry does); otherwise the manifest is not acceptable.
    ///
    /// # Errors
    /// `ManifestNotAcceptable`, storage failures.
    pub fn negotiate(
        &self,
        name: &str,
        entry: Arc<Cached>,
        accept: &[String],
    ) -> Result<Arc<Cached>> {
        let takes = |t: &str| {
            accept.is_empty()
                || accept.iter().any(|a| {
                    a == t || a == "*/*" || a == "application/*" || a == "application/json"
                })
        };
        if takes(&entry.media_type) {
            return Ok(entry);
        }
        let not_acceptable = || ServiceError::ManifestNotAcceptable {
            digest: entry.digest.clone(),
            media_type: entry.media_type.clone(),
        };
        if !is_index(&entry.media_type) {
            return Err(not_acceptable());
        }
        let index: ImageIndex =
            serde_json::from_slice(&entry.bytes).map_err(|_| not_acceptable())?;
        let child = index.manifests().iter().find(|d| {
            d.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"
            }) && takes(d.media_type().as_ref())
        });
        match child {
            Some(c) => self.get_manifest(name, c.digest().as_ref()),
            None => Err(not_acceptable()),
        }
    }

    /// Deletes a tag, or a manifest with every tag pointing at it (end-9).
    ///
    /// # Errors
    /// `ManifestUnknown`, storage failures.
    pub fn delete_manifest(&self, name: &str, reference: &str) -> Result<()> {
        let unknown = || ServiceError::ManifestUnknown {
            name: name.to_owned(),
            reference: reference.to_owned(),
        };
        self.manifests.invalidate(name);
        if !reference.contains(':') {
            if !valid_tag(reference) {
                return Err(ServiceError::TagInvalid {
                    tag: reference.to_owned(),
                });
            }
            if !self.exists(&paths::tag_link(name, reference))? {
                return Err(unknown());
            }
            self.driver.delete(&paths::tag_dir(name, reference))?;
            return Ok(());
        }
        let digest = crate::digest::parse(reference)
            .map_err(|reason| ServiceError::DigestInvalid { reason })?;
        let link = match self.driver.get(&paths::revision_link(name, &digest)) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        // Tags first: a crash midway leaves a manifest without tags, never a tag without manifest.
        let wanted = digest.to_string();
        for tag in self.list_or_empty(&paths::tags_dir(name))? {
            if let Ok(target) = self.driver.get(&paths::tag_link(name, &tag)) {
                if target.trim_ascii() == wanted.as_bytes() {
                    self.driver.delete(&paths::tag_dir(name, &tag))?;
                }
            }
        }
        if let Some((_, media_type)) = parse_link(&link) {
            if let Ok(bytes) = self.driver.get(&paths::blob_data(&digest)) {
                if let Ok((_, parsed)) = parse_manifest(Some(&media_type), &bytes) {
                    if let Some(subject) = parsed.subject() {
                        match self.driver.delete(&paths::referrer_entry(
                            name,
                            subject.digest(),
                            &digest,
                        )) {
                            Ok(()) => {}
                            Err(e) if e.is_not_found() => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        self.driver.delete(&paths::revision_dir(name, &digest))?;
        self.manifests.invalidate(name);
        Ok(())
    }

    /// Manifests in `name` whose `subject` is `subject` (end-12), optionally filtered by
    /// `artifactType`. Never "not found": no referrers is an empty index.
    ///
    /// # Errors
    /// Storage failures.
    pub fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ImageIndex> {
        let dir = paths::referrers_dir(name, subject);
        let mut found = Vec::new();
        for entry in self.list_or_empty(&dir)? {
            let Ok(bytes) = self.driver.get(&format!("{dir}/{entry}")) else {
                continue;
            };
            let Ok(desc) = serde_json::from_slice::<Descriptor>(&bytes) else {
                continue;
            };
            // Skip entries whose manifest is gone (a crash between the two deletes).
            if !self.exists(&paths::revision_link(name, desc.digest()))? {
                continue;
            }
            if let Some(want) = artifact_type {
                if desc
                    .artifact_type()
                    .as_ref()
                    .map(ToString::to_string)
                    .as_deref()
                    != Some(want)
                {
                    continue;
                }
            }
            found.push(desc);
        }
        Ok(ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(found)
            .build()
            .expect("all required fields set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_header_body_or_shape() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        assert_eq!(parse_manifest(None, m).unwrap().0, OCI_MANIFEST);
        assert_eq!(
            parse_manifest(Some(DOCKER_MANIFEST), m).unwrap().0,
            DOCKER_MANIFEST
        );
        assert_eq!(
            parse_manifest(Some("application/json; charset=utf-8"), m)
                .unwrap()
                .0,
            OCI_MANIFEST
        );
        let i = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert_eq!(parse_manifest(None, i).unwrap().0, OCI_INDEX);
        let err = parse_manifest(Some(DOCKER_MANIFEST), i)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn schema1_and_garbage_are_refused() {
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(parse_manifest(None, s1)
            .err()
            .unwrap()
            .to_string()
            .contains("schema 1"));
        assert!(parse_manifest(Some(DOCKER_SCHEMA1[1]), b"{}")
            .err()
            .unwrap()
            .to_string()
            .contains("schema 1"));
        assert!(parse_manifest(None, b"{not json")
            .err()
            .unwrap()
            .to_string()
            .contains("not valid JSON"));
        assert!(parse_manifest(None, b"[]").is_err());
        let bad_digest = br#"{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:zz","size":0},"layers":[]}"#;
        assert!(parse_manifest(None, bad_digest).is_err());
    }
}
