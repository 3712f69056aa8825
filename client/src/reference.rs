//! Image references with Docker's normalisation: `busybox` is `docker.io/library/busybox:latest`.
//!
//! Grammar (distribution's `reference` package): `[domain/]path[:tag][@digest]`, where the first
//! component is a domain when it contains `.` or `:` or is `localhost`; path components are
//! lowercase `[a-z0-9]+` joined by `.`, `_`, `__` or `-+`; tags are `[\w][\w.-]{0,127}`.

use std::fmt;

use oci_spec::image::Digest;

/// Docker Hub as written in normalised references.
pub const DOCKER_HUB: &str = "docker.io";

/// Why a reference is not valid; messages follow Docker's ("invalid reference format: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Empty string.
    #[error("invalid reference format: empty reference")]
    Empty,
    /// Upper-case letters in the repository.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NotLowercase(String),
    /// Anything else malformed.
    #[error("invalid reference format: `{0}`")]
    Format(String),
    /// Bad tag.
    #[error("invalid reference format: tag `{0}` must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")]
    Tag(String),
    /// Bad digest.
    #[error("invalid reference format: digest `{0}` is not `algorithm:hex`")]
    Digest(String),
    /// Name over 255 characters.
    #[error("invalid reference format: repository name must not be longer than 255 characters")]
    TooLong,
}

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host\[:port\], `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path within the registry (`library/busybox`).
    pub repository: String,
    /// Tag, if given (or `latest` when neither tag nor digest was).
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does.
    ///
    /// # Errors
    /// [`ReferenceError`] with Docker's wording.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let digest: Digest = d
                    .parse()
                    .map_err(|_| ReferenceError::Digest(d.to_owned()))?;
                (r, Some(digest))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag(t.to_owned()));
            }
        }
        let (registry, path) = split_domain(name);
        if registry.is_empty() || path.is_empty() {
            return Err(ReferenceError::Format(input.to_owned()));
        }
        if !valid_domain(registry) {
            return Err(ReferenceError::Format(input.to_owned()));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::NotLowercase(path.to_owned()));
        }
        if !path.split('/').all(valid_component) {
            return Err(ReferenceError::Format(input.to_owned()));
        }
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        if registry.len() + 1 + repository.len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    #[must_use]
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// `registry/repository` without tag or digest.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as Docker prints it, without tag or digest (`busybox`, `ghcr.io/org/app`).
    #[must_use]
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        }
    }

    /// True when `input` names a tag explicitly (`name:tag`), as opposed to the implied `latest`.
    #[must_use]
    pub fn has_explicit_tag(input: &str) -> bool {
        let name = input.split('@').next().unwrap_or(input);
        let last = name.rsplit('/').next().unwrap_or(name);
        last.contains(':')
    }

    /// The short form Docker prints (`busybox:latest`, `ghcr.io/org/app:v1`).
    #[must_use]
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_ref());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DOCKER_HUB, name),
    }
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
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

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[rstest]
    #[case("busybox", "docker.io/library/busybox:latest", "busybox:latest")]
    #[case("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36")]
    #[case(
        "library/busybox",
        "docker.io/library/busybox:latest",
        "busybox:latest"
    )]
    #[case("user/app", "docker.io/user/app:latest", "user/app:latest")]
    #[case("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1")]
    #[case("localhost/app", "localhost/app:latest", "localhost/app:latest")]
    #[case(
        "localhost:5000/a/b/c:t",
        "localhost:5000/a/b/c:t",
        "localhost:5000/a/b/c:t"
    )]
    #[case(
        "127.0.0.1:5000/team/app",
        "127.0.0.1:5000/team/app:latest",
        "127.0.0.1:5000/team/app:latest"
    )]
    #[case(
        "ghcr.io/org/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ghcr.io/org/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ghcr.io/org/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )]
    #[case("[::1]:5000/app:v2", "[::1]:5000/app:v2", "[::1]:5000/app:v2")]
    fn normalises(#[case] input: &str, #[case] full: &str, #[case] familiar: &str) {
        let r = Reference::parse(input).unwrap();
        assert_eq!(r.to_string(), full);
        assert_eq!(r.familiar(), familiar);
    }

    #[test]
    fn tag_and_digest_together() {
        let r = Reference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.target(), D);
        assert_eq!(Reference::parse("busybox").unwrap().target(), "latest");
    }

    #[rstest]
    #[case("", "empty")]
    #[case("Busybox", "must be lowercase")]
    #[case("busybox:", "tag")]
    #[case("busybox:-x", "tag")]
    #[case("busybox@sha256:12", "digest")]
    #[case("a//b", "invalid reference format")]
    #[case("-a", "invalid reference format")]
    #[case("host:port/app", "invalid reference format")]
    #[case("exa_mple.com/app", "invalid reference format")]
    #[case("app/", "invalid reference format")]
    fn rejects(#[case] input: &str, #[case] message: &str) {
        let err = Reference::parse(input).unwrap_err().to_string();
        assert!(err.contains(message), "{input:?}: {err}");
        assert!(err.starts_with("invalid reference format"), "{err}");
    }

    #[test]
    fn too_long() {
        let long = format!("reg.example/{}", "a".repeat(250));
        assert_eq!(Reference::parse(&long), Err(ReferenceError::TooLong));
    }
}
