//! What a request needs: the accesses (`repository:team/app:pull,push`, `registry:catalog:*`)
//! of each endpoint, and the scope grammar of the token spec (`spec-auth-scope.md`).
//!
//! Pure functions over the parsed [`Route`]; no I/O, safe to fuzz.

use std::fmt;

use axum::http::Method;

use crate::route::Route;

/// An action on a resource, as written in scopes and in the tokens' `access` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read manifests, blobs, tags, referrers.
    Pull,
    /// Upload blobs, put manifests and tags.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
    /// Everything (`*`): the catalog's only action.
    All,
}

impl Action {
    /// Parses `pull`, `push`, `delete`, `*`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(Self::Pull),
            "push" => Some(Self::Push),
            "delete" => Some(Self::Delete),
            "*" => Some(Self::All),
            _ => None,
        }
    }

    /// The wire form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
            Self::All => "*",
        }
    }
}

/// A resource: `repository` + name, or `registry` + `catalog`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    /// `repository` or `registry` (a `repository(plugin)` class is kept as written).
    pub kind: String,
    /// Repository name, or `catalog`.
    pub name: String,
}

impl Resource {
    /// `repository:<name>`.
    #[must_use]
    pub fn repository(name: &str) -> Self {
        Self {
            kind: "repository".into(),
            name: name.into(),
        }
    }

    /// `registry:catalog`.
    #[must_use]
    pub fn catalog() -> Self {
        Self {
            kind: "registry".into(),
            name: "catalog".into(),
        }
    }

    /// Whether this is a repository (with or without a class such as `(plugin)`).
    #[must_use]
    pub fn is_repository(&self) -> bool {
        self.kind == "repository" || self.kind.starts_with("repository(")
    }
}

/// Actions wanted on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The resource.
    pub resource: Resource,
    /// Every action needed (all of them).
    pub actions: Vec<Action>,
}

impl fmt::Display for Access {
    /// The scope form, `repository:team/app:pull,push`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        write!(
            f,
            "{}:{}:{}",
            self.resource.kind,
            self.resource.name,
            actions.join(",")
        )
    }
}

/// The scope string of a challenge: accesses separated by spaces.
#[must_use]
pub fn scope_string(accesses: &[Access]) -> String {
    accesses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses one scope (`repository:team/app:pull,push`, `registry:catalog:*`). Unknown actions are
/// dropped (the spec lets servers ignore them); `None` when the shape is wrong.
#[must_use]
pub fn parse_scope(scope: &str) -> Option<Access> {
    // The name may hold a `:port` of a registry host? No: names never contain `:`, but the
    // resource type may carry a class, `repository(plugin)`. Split type from the left and the
    // actions from the right.
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    let actions = actions.split(',').filter_map(Action::parse).collect();
    Some(Access {
        resource: Resource {
            kind: kind.into(),
            name: name.into(),
        },
        actions,
    })
}

/// Parses the scopes of a token request: repeated parameters, each possibly space-separated.
#[must_use]
pub fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Access> {
    values
        .into_iter()
        .flat_map(str::split_whitespace)
        .filter_map(parse_scope)
        .collect()
}

/// The accesses a request needs. An empty list means "signed in, nothing more" (`/v2/`, and
/// paths that match no endpoint).
#[must_use]
pub fn needed(route: Option<&Route>, method: &Method, query: Option<&str>) -> Vec<Access> {
    use Action::{All, Delete, Pull, Push};
    let repo = |name: &str, actions: Vec<Action>| Access {
        resource: Resource::repository(name),
        actions,
    };
    let Some(route) = route else {
        return Vec::new();
    };
    let read = matches!(*method, Method::GET | Method::HEAD);
    match route {
        Route::Base => Vec::new(),
        Route::Catalog => vec![Access {
            resource: Resource::catalog(),
            actions: vec![All],
        }],
        Route::Tags { name } | Route::Referrers { name, .. } => vec![repo(name, vec![Pull])],
        Route::Manifest { name, .. } | Route::Blob { name, .. } => {
            if read {
                vec![repo(name, vec![Pull])]
            } else if *method == Method::DELETE {
                vec![repo(name, vec![Delete])]
            } else {
                vec![repo(name, vec![Push])]
            }
        }
        // Uploads need pull and push (as the CNCF registry asks): the client reads back what
        // it wrote. A cross-repository mount also reads the source repository.
        Route::UploadStart { name } => {
            let mut v = vec![repo(name, vec![Pull, Push])];
            let q: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
            let has_mount = q.iter().any(|(k, _)| k == "mount");
            // The handler mounts only from a valid repository name (else it starts a plain
            // upload), so an invalid `from` needs nothing, and never reaches a challenge's scope.
            if let Some((_, from)) = q.iter().find(|(k, _)| k == "from") {
                if has_mount && from != name && crate::route::valid_name(from) {
                    v.push(repo(from, vec![Pull]));
                }
            }
            v
        }
        Route::Upload { name, .. } => vec![repo(name, vec![Pull, Push])],
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::route;

    fn scopes(method: Method, path: &str) -> String {
        let (path, query) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        let r = route::parse(path).ok();
        scope_string(&needed(r.as_ref(), &method, query))
    }

    #[rstest]
    #[case(Method::GET, "", "")]
    #[case(Method::GET, "_catalog", "registry:catalog:*")]
    #[case(Method::GET, "a/b/tags/list", "repository:a/b:pull")]
    #[case(Method::HEAD, "a/manifests/v1", "repository:a:pull")]
    #[case(Method::PUT, "a/manifests/v1", "repository:a:push")]
    #[case(Method::DELETE, "a/manifests/v1", "repository:a:delete")]
    #[case(Method::GET, "a/blobs/sha256:00", "repository:a:pull")]
    #[case(Method::DELETE, "a/blobs/sha256:00", "repository:a:delete")]
    #[case(Method::GET, "a/referrers/sha256:00", "repository:a:pull")]
    #[case(Method::POST, "a/blobs/uploads/", "repository:a:pull,push")]
    #[case(
        Method::POST,
        "a/blobs/uploads/?mount=sha256:00&from=b/c",
        "repository:a:pull,push repository:b/c:pull"
    )]
    #[case(
        Method::POST,
        "a/blobs/uploads/?mount=sha256:00&from=b/%22x%0a",
        "repository:a:pull,push"
    )]
    #[case(Method::PATCH, "a/blobs/uploads/x", "repository:a:pull,push")]
    #[case(Method::DELETE, "a/blobs/uploads/x", "repository:a:pull,push")]
    #[case(Method::GET, "x/unknown/thing", "")]
    fn endpoint_families(#[case] m: Method, #[case] path: &str, #[case] expected: &str) {
        assert_eq!(scopes(m, path), expected);
    }

    #[rstest]
    #[case("repository:team/app:pull,push", Some("repository:team/app:pull,push"))]
    #[case("registry:catalog:*", Some("registry:catalog:*"))]
    #[case("repository(plugin):x:pull", Some("repository(plugin):x:pull"))]
    #[case("repository:x:pull,bogus", Some("repository:x:pull"))]
    #[case("repository::pull", None)]
    #[case("nothing", None)]
    #[case(":x:pull", None)]
    fn scope_grammar(#[case] s: &str, #[case] expected: Option<&str>) {
        assert_eq!(parse_scope(s).map(|a| a.to_string()).as_deref(), expected);
    }
}
