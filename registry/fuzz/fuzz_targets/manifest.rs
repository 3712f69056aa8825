//! Manifest validation as a PUT does it before storage (`service::manifest::validate_manifest`):
//! media type from `Content-Type` and the document, schema 1 refused, schema version, shape.
//!
//! Input: `CONTENT-TYPE\nBODY` (an empty first line: no `Content-Type`; no newline: all body).
//! Invariants: the result is one of the four accepted types; the body is a JSON object with
//! `"schemaVersion": 2`; an accepted `Content-Type` and the body's `mediaType` both equal the
//! result; the body deserialises as an index for index types and as a manifest otherwise;
//! pushing the same bytes again with the result as `Content-Type` gives the same result;
//! failures are always `MANIFEST_INVALID`.
#![no_main]

use berth_registry::service::manifest::{
    validate_manifest, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use berth_registry::service::ServiceError;
use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageIndex, ImageManifest};

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let content_type = content_type.filter(|c| !c.is_empty());
    let media_type = match validate_manifest(content_type, body) {
        Ok(t) => t,
        Err(ServiceError::ManifestInvalid { .. }) => return,
        Err(e) => panic!("unexpected error {e:?}"),
    };
    let known = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
    assert!(known.contains(&media_type.as_str()), "{media_type:?}");
    let value: serde_json::Value = serde_json::from_slice(body).expect("accepted body is JSON");
    let obj = value.as_object().expect("accepted body is an object");
    assert_eq!(obj.get("schemaVersion").and_then(|v| v.as_u64()), Some(2));
    if let Some(h) = content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
        if known.contains(&h) {
            assert_eq!(h, media_type);
        }
    }
    if let Some(declared) = obj.get("mediaType").and_then(|v| v.as_str()) {
        assert_eq!(declared, media_type);
    }
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        assert!(serde_json::from_slice::<ImageIndex>(body).is_ok());
    } else {
        assert!(serde_json::from_slice::<ImageManifest>(body).is_ok());
    }
    assert_eq!(
        validate_manifest(Some(&media_type), body).ok().as_ref(),
        Some(&media_type)
    );
});
