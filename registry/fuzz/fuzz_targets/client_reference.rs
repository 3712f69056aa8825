//! The client's image references (`berth_client::Reference::parse`: its regex-free fast path
//! and oci-spec's grammar behind it).
//!
//! Invariants: the normalised form and Docker's familiar form (unless ambiguous, see below)
//! both parse back to the same reference; the repository is a name the registry accepts and the tag a tag it accepts; the
//! fast path agrees with oci-spec's parser (registry, repository, tag, digest) whenever the
//! client accepts; without an explicit tag or digest the tag is `latest`.
#![no_main]

use berth_client::Reference;
use berth_registry::route;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(s) else {
        return;
    };
    let full = r.to_string();
    assert_eq!(Reference::parse(&full).as_ref(), Ok(&r), "{s:?} → {full:?}");
    // Docker's familiar form is ambiguous for a Docker Hub repository whose first component
    // looks like a host (`docker.io/a.b/c` prints as `a.b/c`); Docker prints it so too.
    let first = r.repository.split('/').next().unwrap_or("");
    let ambiguous = r.registry == "docker.io"
        && r.repository.contains('/')
        && (first.contains(['.', ':']) || first == "localhost");
    let familiar = r.familiar();
    if !ambiguous {
        assert_eq!(Reference::parse(&familiar).as_ref(), Ok(&r), "{s:?} → {familiar:?}");
    }
    assert!(route::valid_name(&r.repository), "{s:?}: repository {:?}", r.repository);
    assert!(r.registry.len() + 1 + r.repository.len() <= 255);
    if let Some(t) = &r.tag {
        assert!(route::valid_tag(t), "{s:?}: tag {t:?}");
    }
    if !Reference::has_explicit_tag(s) && r.digest.is_none() {
        assert_eq!(r.tag.as_deref(), Some("latest"), "{s:?}");
    }
    let oci: oci_spec::distribution::Reference = s
        .parse()
        .unwrap_or_else(|e| panic!("client takes {s:?}, oci-spec refuses: {e}"));
    assert_eq!(oci.registry(), r.registry, "{s:?}");
    assert_eq!(oci.repository(), r.repository, "{s:?}");
    assert_eq!(oci.tag(), r.tag.as_deref(), "{s:?}");
    assert_eq!(oci.digest(), r.digest.as_ref().map(AsRef::as_ref), "{s:?}");
});
