//! `commit`: a container's changes (its overlay `upper/`) become a new layer on top of its
//! image. Whiteouts turn into OCI `.wh.` entries; the config is the image's, plus the layer's
//! diff ID, a history entry (author, comment) and `--change` instructions.
//!
//! May call [`super::state`], [`super::lock`], [`super::rootfs`], [`crate::containers_fs`]
//! (the walk of `upper/` by handles), [`crate::archive`] (layer and blob writing, `--change`),
//! [`crate::reference`] and [`crate::store`].

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;

use serde_json::json;

use super::lock::{Lock, LockError};
use super::state::{self, StateError};
use crate::archive::change::{self, ContainerConfig};
use crate::archive::import::write_layer;
use crate::archive::{media, put_blob, ArchiveError, NewBlobs};
use crate::containers_fs::{append_tree_at, piped, ResolveError, RootDir};
use crate::reference::{Reference, ReferenceError};
use crate::store::{NewImage, Store, StoreError};

/// A container could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// The container's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The new image's reference does not parse.
    #[error("invalid reference `{reference}`")]
    Reference {
        /// The reference as given.
        reference: String,
        /// Why.
        #[source]
        source: ReferenceError,
    },
    /// The new image's reference names a digest.
    #[error("cannot commit to a digest reference")]
    DigestReference,
    /// The container's root file system is a copy, not an overlay.
    #[error("cannot commit container {0}: its root file system is a copy (overlayfs was unavailable), so its changes cannot be told apart from the image")]
    RootfsCopied(String),
    /// The container's image is no longer in the store.
    #[error("the image of container {container} is gone")]
    ImageGone {
        /// The container's name.
        container: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The container's `upper/` cannot be opened.
    #[error(transparent)]
    Upper(ResolveError),
    /// Walking `upper/` into the new layer.
    #[error("cannot archive the container's changes")]
    ArchiveChanges(#[source] std::io::Error),
    /// Piping the new layer's tar stream.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A `--change` instruction, or writing the layer or a blob.
    #[error(transparent)]
    Archive(ArchiveError),
    /// Reading the image's config, unpacking the layer, adding the image.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A digest in the store's records does not parse.
    #[error(transparent)]
    Digest(#[from] oci_spec::OciSpecError),
    /// The image's config is not JSON the way it should be.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl CommitError {
    /// An [`anyhow::Error`] whose chain holds the store's own error when there is one, so the
    /// binary's hints (`berth_client::hints`) find it.
    #[must_use]
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::Store(e) => anyhow::Error::new(e),
            Self::Archive(e) => e.into_anyhow(),
            other => anyhow::Error::new(other),
        }
    }
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, CommitError>;

/// What to commit, and how (`commit`'s arguments).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The container's name or ID.
    pub container: String,
    /// `REPOSITORY[:TAG]` for the new image.
    pub reference: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// `--message`.
    pub message: Option<String>,
    /// `--change` instructions.
    pub changes: Vec<String>,
}

/// Commits the container; the new image's ID (`sha256:…`).
///
/// # Errors
/// No such container or image, an invalid reference or `--change`, I/O.
pub fn commit(store: &Store, opts: &CommitOptions) -> Result<String> {
    let reference = opts
        .reference
        .as_deref()
        .map(|r| -> Result<String> {
            let parsed = Reference::parse(r).map_err(|source| CommitError::Reference {
                reference: r.to_owned(),
                source,
            })?;
            if parsed.digest.is_some() {
                return Err(CommitError::DigestReference);
            }
            Ok(parsed.to_string())
        })
        .transpose()?;
    change::apply(&mut ContainerConfig::default(), &opts.changes)
        .map_err(|e| CommitError::Archive(e.into()))?;
    let (dir, state) = state::find(store.root(), &opts.container)?;
    if super::rootfs::rootfs_copied(&dir) {
        return Err(CommitError::RootfsCopied(state.name));
    }
    let _lock = Lock::take(&dir)?;
    let image = store
        .image(&state.image)
        .map_err(|source| CommitError::ImageGone {
            container: state.name.clone(),
            source,
        })?;
    let mut doc: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.id.parse()?)?)?;

    let mut new = NewBlobs::new(store);
    // `upper/` is the container's to change while this runs: walk it by handles, so a directory
    // swapped for a symlink is archived as that symlink, never followed (CVE-2018-15664).
    let upper = RootDir::open(&dir.join("upper")).map_err(CommitError::Upper)?;
    let mut written = None;
    piped::<CommitError>(
        move |w| {
            let mut b = tar::Builder::new(std::io::BufWriter::new(w));
            append_tree_at(&mut b, upper.fd(), OsStr::new("."), Path::new(""), true)
                .map_err(CommitError::ArchiveChanges)?;
            b.into_inner()?.flush()?;
            Ok(())
        },
        |r| {
            written = Some(write_layer(store, &mut new, r).map_err(CommitError::Archive)?);
            Ok(())
        },
    )?;
    let (layer, diff_id) = written.expect("written");
    store.unpack_layer(
        &store.blob_path(&layer.digest.parse()?),
        &layer.media_type,
        &diff_id.parse()?,
    )?;

    let mut config: ContainerConfig =
        serde_json::from_value(doc.get("config").cloned().unwrap_or(json!({})))?;
    change::apply(&mut config, &opts.changes).map_err(|e| CommitError::Archive(e.into()))?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut history = json!({
        "created": created,
        "created_by": state.command.join(" "),
    });
    if let Some(a) = &opts.author {
        history["author"] = json!(a);
        doc["author"] = json!(a);
    }
    if let Some(m) = &opts.message {
        history["comment"] = json!(m);
        doc["comment"] = json!(m);
    }
    // Merge rather than replace, so config fields berth does not model survive.
    let mut merged = doc.get("config").cloned().unwrap_or(json!({}));
    if let (Some(obj), serde_json::Value::Object(changed)) =
        (merged.as_object_mut(), serde_json::to_value(&config)?)
    {
        for (k, v) in changed {
            obj.insert(k, v);
        }
    }
    doc["config"] = merged;
    doc["created"] = json!(created);
    doc["container"] = json!(state.id);
    if !doc["rootfs"]["diff_ids"].is_array() {
        doc["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    doc["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("array")
        .push(json!(diff_id));
    if !doc["history"].is_array() {
        doc["history"] = json!([]);
    }
    doc["history"].as_array_mut().expect("array").push(history);
    let config_bytes = serde_json::to_vec(&doc)?;
    let config_digest = put_blob(store, &mut new, &config_bytes).map_err(CommitError::Archive)?;

    let mut layers = image.layers.clone();
    layers.push(layer);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type,
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest_digest =
        put_blob(store, &mut new, &serde_json::to_vec(&manifest)?).map_err(CommitError::Archive)?;
    let rec = store.add_image(&NewImage {
        manifest: manifest_digest.to_string(),
        manifest_media_type: media::OCI_MANIFEST.into(),
        config: config_digest.to_string(),
        layers,
        repo_digest: None,
        tags: reference.into_iter().collect(),
    })?;
    Ok(rec.id)
}
