//! Parsing of `/v2/...` paths into typed routes, from the right, so repository names may contain
//! any number of `/`-separated components (including components such as `blobs` or `manifests`).
//!
//! Pure functions, no I/O: unit-tested here and safe to fuzz.

/// One parsed API path (method-independent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/` (end-1).
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list` (end-8).
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>` (end-3, end-7, end-9).
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/<digest>` (end-2, end-10).
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/` (end-4, end-11).
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<session>` (end-5, end-6, end-13, end-14).
    Upload { name: String, session: String },
    /// `/v2/<name>/referrers/<digest>` (end-12).
    Referrers { name: String, digest: String },
}

/// Why a path did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The path matches no endpoint.
    NotFound,
    /// The path matches an endpoint but the repository name is invalid.
    NameInvalid(String),
}

/// Parses the part of the path after `/v2/` (leading slash already stripped).
///
/// # Errors
/// [`RouteError`] when no endpoint matches or the name is invalid.
pub fn parse(rest: &str) -> Result<Route, RouteError> {
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let named = |name: &str, route: Route| {
        if valid_name(name) {
            Ok(route)
        } else {
            Err(RouteError::NameInvalid(name.to_owned()))
        }
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return named(
            name,
            Route::Tags {
                name: name.to_owned(),
            },
        );
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return named(
            name,
            Route::UploadStart {
                name: name.to_owned(),
            },
        );
    }
    let (head, last) = rest.rsplit_once('/').ok_or(RouteError::NotFound)?;
    if last.is_empty() {
        return Err(RouteError::NotFound);
    }
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        if !last.contains(':') {
            return named(
                name,
                Route::Upload {
                    name: name.to_owned(),
                    session: last.to_owned(),
                },
            );
        }
    }
    let (name, kind) = head.rsplit_once('/').ok_or(RouteError::NotFound)?;
    let (name, last) = (name.to_owned(), last.to_owned());
    match kind {
        "manifests" => named(
            &name.clone(),
            Route::Manifest {
                name,
                reference: last,
            },
        ),
        "blobs" => named(&name.clone(), Route::Blob { name, digest: last }),
        "referrers" => named(&name.clone(), Route::Referrers { name, digest: last }),
        _ => Err(RouteError::NotFound),
    }
}

/// Repository name per the distribution spec:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    // Separators between alphanumeric runs: ".", "_", "__", or one or more "-".
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Tag per the spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[must_use]
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[rstest]
    #[case("", Route::Base)]
    #[case("_catalog", Route::Catalog)]
    #[case("a/b/c/d/tags/list", Route::Tags { name: s("a/b/c/d") })]
    #[case("lib/x/manifests/latest", Route::Manifest { name: s("lib/x"), reference: s("latest") })]
    #[case("x/blobs/sha256:ab", Route::Blob { name: s("x"), digest: s("sha256:ab") })]
    #[case("x/blobs/blobs/sha256:ab", Route::Blob { name: s("x/blobs"), digest: s("sha256:ab") })]
    #[case("x/manifests/manifests/v1", Route::Manifest { name: s("x/manifests"), reference: s("v1") })]
    #[case("x/blobs/uploads/", Route::UploadStart { name: s("x") })]
    #[case("x/blobs/uploads", Route::UploadStart { name: s("x") })]
    #[case("x/y/blobs/uploads/abc-123", Route::Upload { name: s("x/y"), session: s("abc-123") })]
    #[case("x/referrers/sha256:ab", Route::Referrers { name: s("x"), digest: s("sha256:ab") })]
    fn parses(#[case] path: &str, #[case] expected: Route) {
        assert_eq!(parse(path), Ok(expected));
    }

    #[rstest]
    #[case("x")]
    #[case("x/")]
    #[case("x/other/thing")]
    #[case("manifests/latest")]
    #[case("x/manifests/")]
    fn not_found(#[case] path: &str) {
        assert_eq!(parse(path), Err(RouteError::NotFound));
    }

    #[rstest]
    #[case("UPPER/manifests/latest")]
    #[case("a//b/manifests/latest")]
    #[case("-a/manifests/latest")]
    #[case("a../tags/list")]
    #[case("a/../b/blobs/uploads/")]
    fn name_invalid(#[case] path: &str) {
        assert!(matches!(parse(path), Err(RouteError::NameInvalid(_))));
    }

    #[rstest]
    #[case("a", true)]
    #[case("a/b/c/d", true)]
    #[case("a.b_c__d---e/f0", true)]
    #[case("a___b", false)]
    #[case("a._b", false)]
    #[case("a.", false)]
    #[case("", false)]
    #[case("a/", false)]
    fn names(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(valid_name(name), ok, "{name}");
    }

    #[rstest]
    #[case("latest", true)]
    #[case("_x.Y-1", true)]
    #[case(".x", false)]
    #[case("-x", false)]
    #[case("a:b", false)]
    #[case("", false)]
    fn tags(#[case] tag: &str, #[case] ok: bool) {
        assert_eq!(valid_tag(tag), ok, "{tag}");
        assert!(!valid_tag(&"a".repeat(129)));
    }
}
