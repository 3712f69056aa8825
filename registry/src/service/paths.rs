//! Where things live in the storage namespace (layout drawn in `crate::storage`).
//!
//! Inputs are validated before they get here: names by `route::valid_name`, tags by
//! `route::valid_tag`, digests by `oci-spec`, sessions by `uuid` parsing.

use oci_spec::image::Digest;

/// Blob content.
#[must_use]
pub fn blob_data(d: &Digest) -> String {
    let hex = d.digest();
    let prefix = hex.get(..2).unwrap_or(hex);
    format!("blobs/{}/{prefix}/{hex}/data", d.algorithm().as_ref())
}

/// Repository root.
#[must_use]
pub fn repo(name: &str) -> String {
    format!("repositories/{name}")
}

/// Marker of a repository: present once a manifest was pushed.
#[must_use]
pub fn manifests_dir(name: &str) -> String {
    format!("repositories/{name}/_manifests")
}

/// "This blob is in the repository".
#[must_use]
pub fn layer_link(name: &str, d: &Digest) -> String {
    format!(
        "repositories/{name}/_layers/{}/{}/link",
        d.algorithm().as_ref(),
        d.digest()
    )
}

/// "This manifest is in the repository" (content: digest and media type).
#[must_use]
pub fn revision_link(name: &str, d: &Digest) -> String {
    format!(
        "repositories/{name}/_manifests/revisions/{}/{}/link",
        d.algorithm().as_ref(),
        d.digest()
    )
}

/// Directory of a revision (deleted as a whole).
#[must_use]
pub fn revision_dir(name: &str, d: &Digest) -> String {
    format!(
        "repositories/{name}/_manifests/revisions/{}/{}",
        d.algorithm().as_ref(),
        d.digest()
    )
}

/// Directory holding all tags.
#[must_use]
pub fn tags_dir(name: &str) -> String {
    format!("repositories/{name}/_manifests/tags")
}

/// Directory of one tag (deleted as a whole).
#[must_use]
pub fn tag_dir(name: &str, tag: &str) -> String {
    format!("repositories/{name}/_manifests/tags/{tag}")
}

/// Current target of a tag.
#[must_use]
pub fn tag_link(name: &str, tag: &str) -> String {
    format!("repositories/{name}/_manifests/tags/{tag}/current/link")
}

/// Directory of descriptors referring to `subject`.
#[must_use]
pub fn referrers_dir(name: &str, subject: &Digest) -> String {
    format!(
        "repositories/{name}/_referrers/{}/{}",
        subject.algorithm().as_ref(),
        subject.digest()
    )
}

/// Descriptor of `referrer` under `subject`.
#[must_use]
pub fn referrer_entry(name: &str, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{}/{}-{}",
        referrers_dir(name, subject),
        referrer.algorithm().as_ref(),
        referrer.digest()
    )
}

/// Root of upload sessions.
pub const UPLOADS: &str = "_uploads";

/// Session directory.
#[must_use]
pub fn upload_dir(session: &str) -> String {
    format!("{UPLOADS}/{session}")
}

/// Session data received so far.
#[must_use]
pub fn upload_data(session: &str) -> String {
    format!("{UPLOADS}/{session}/data")
}

/// Session metadata (repository, algorithm, start time).
#[must_use]
pub fn upload_info(session: &str) -> String {
    format!("{UPLOADS}/{session}/info")
}
