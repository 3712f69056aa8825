//! `/v2/…` routes: `route::parse` on the path (as `api::dispatch` and the auth layer strip it),
//! then `auth::access::needed` for the method and query.
//!
//! Input: `METHOD\nPATH[?QUERY]` (without a newline: `GET`, the whole input the path).
//! Invariants: a parsed route prints back to a path that parses to the same route; its name is a
//! valid repository name (and `NameInvalid` names are invalid); every repository the request
//! needs access to is a valid name, and each access prints to a scope that parses back to it.
#![no_main]

use berth_registry::auth::access::{needed, parse_scope};
use berth_registry::route::{self, Route, RouteError};
use http::Method;
use libfuzzer_sys::fuzz_target;

fn to_path(r: &Route) -> String {
    match r {
        Route::Base => String::new(),
        Route::Catalog => "_catalog".into(),
        Route::Tags { name } => format!("{name}/tags/list"),
        Route::Manifest { name, reference } => format!("{name}/manifests/{reference}"),
        Route::Blob { name, digest } => format!("{name}/blobs/{digest}"),
        Route::UploadStart { name } => format!("{name}/blobs/uploads/"),
        Route::Upload { name, session } => format!("{name}/blobs/uploads/{session}"),
        Route::Referrers { name, digest } => format!("{name}/referrers/{digest}"),
    }
}

fn name_of(r: &Route) -> Option<&str> {
    match r {
        Route::Base | Route::Catalog => None,
        Route::Tags { name }
        | Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::UploadStart { name }
        | Route::Upload { name, .. }
        | Route::Referrers { name, .. } => Some(name),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (method, target) = s.split_once('\n').unwrap_or(("GET", s));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let parsed = route::parse(rest);
    match &parsed {
        Ok(r) => {
            let printed = to_path(r);
            assert_eq!(route::parse(&printed).as_ref(), Ok(r), "{printed:?}");
            if let Some(name) = name_of(r) {
                assert!(route::valid_name(name), "{name:?}");
            }
        }
        Err(RouteError::NameInvalid(n)) => assert!(!route::valid_name(n), "{n:?}"),
        Err(RouteError::NotFound) => {}
    }
    for access in needed(parsed.as_ref().ok(), &method, query) {
        if access.resource.is_repository() {
            assert!(
                route::valid_name(&access.resource.name),
                "needs access to an invalid repository name {:?}",
                access.resource.name
            );
        }
        assert!(!access.actions.is_empty());
        assert_eq!(parse_scope(&access.to_string()).as_ref(), Some(&access));
    }
});
