//! Tags and references as the registry checks them (`route::valid_tag`, `route::valid_name`,
//! `digest::parse` for a `<reference>` with `:`), against the client's grammar
//! (`berth_client::Reference::parse`), which must agree on what is a tag and a repository name.
//!
//! Invariants: a valid tag has no `:`/`/` and routes as the `<reference>` of a manifest path; a
//! valid name routes as the `<name>` of a tags path; `r.example/x:TAG` parses in the client with
//! exactly that tag iff the registry takes TAG; `r.example/NAME` parses with exactly that
//! repository iff the registry takes NAME (when short enough for the client's 255-byte limit);
//! a digest the registry accepts is accepted by the client as `…@DIGEST`.
#![no_main]

use berth_client::Reference;
use berth_registry::digest;
use berth_registry::route::{self, Route};
use libfuzzer_sys::fuzz_target;

const HOST: &str = "r.example";

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // As the manifest endpoints read `<reference>`: a digest when it holds `:`, else a tag.
    let tag_ok = route::valid_tag(s);
    if tag_ok {
        assert!(!s.contains([':', '/', '@']) && s.len() <= 128);
        assert_eq!(
            route::parse(&format!("x/manifests/{s}")),
            Ok(Route::Manifest {
                name: "x".into(),
                reference: s.into()
            })
        );
    }
    let client = Reference::parse(&format!("{HOST}/x:{s}"));
    let client_tag_ok = client.as_ref().is_ok_and(|r| {
        r.registry == HOST && r.repository == "x" && r.tag.as_deref() == Some(s) && r.digest.is_none()
    });
    assert_eq!(tag_ok, client_tag_ok, "tag {s:?}: client says {client:?}");

    let name_ok = route::valid_name(s);
    if name_ok {
        assert_eq!(
            route::parse(&format!("{s}/tags/list")),
            Ok(Route::Tags { name: s.into() })
        );
    }
    if s.len() + HOST.len() < 255 {
        let client = Reference::parse(&format!("{HOST}/{s}"));
        let client_name_ok = client.as_ref().is_ok_and(|r| {
            r.registry == HOST
                && r.repository == s
                && r.tag.as_deref() == Some("latest")
                && r.digest.is_none()
        });
        assert_eq!(name_ok, client_name_ok, "name {s:?}: client says {client:?}");
    }

    if let Ok(d) = digest::parse(s) {
        let r = Reference::parse(&format!("{HOST}/x@{s}"))
            .unwrap_or_else(|e| panic!("registry takes {s:?}, client refuses: {e}"));
        assert_eq!(r.digest.as_ref(), Some(&d));
    }
});
