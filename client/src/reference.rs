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

/// A registry host by the reference grammar: dot-separated `[a-zA-Z0-9]` labels with inner
/// dashes, and an optional `:port`.
fn simple_host(h: &str) -> bool {
    let (host, port) = match h.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()))
}

/// One path component by the reference grammar: `[a-z0-9]+` runs joined by `.`, `_`, `__` or
/// any number of `-`.
fn simple_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            x if x.is_ascii_digit() || x.is_ascii_lowercase() => i += 1,
            b'.' | b'_' => {
                let run = b[i..]
                    .iter()
                    .take_while(|&&x| x == b'.' || x == b'_')
                    .count();
                // `.`, `_` or `__` only.
                let sep = &c[i..i + run];
                if !matches!(sep, "." | "_" | "__") {
                    return false;
                }
                i += run;
                if !b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                    return false;
                }
            }
            b'-' => {
                i += b[i..].iter().take_while(|&&x| x == b'-').count();
                if !b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
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
    /// Parses and normalises a reference as `docker pull` does. The grammar and Docker Hub
    /// normalisation are `oci-spec`'s; this adds Docker's error wording and typed digests.
    ///
    /// # Errors
    /// [`ReferenceError`] with Docker's wording.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        use oci_spec::distribution::{ParseError, Reference as OciReference};
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if let Some(simple) = Self::parse_simple(input) {
            return Ok(simple);
        }
        // The repository part of the input, for Docker's "must be lowercase" message.
        let name_of_input = || {
            let name = input.split(['@']).next().unwrap_or(input);
            let last = name.rfind('/').map_or(0, |i| i + 1);
            let name = name[last..].find(':').map_or(name, |i| &name[..last + i]);
            ReferenceError::NotLowercase(name.to_owned())
        };
        let parsed = input.parse::<OciReference>().map_err(|e| match e {
            ParseError::NameTooLong => ReferenceError::TooLong,
            ParseError::NameEmpty => ReferenceError::Empty,
            ParseError::TagInvalidFormat => ReferenceError::Tag(input.to_owned()),
            ParseError::DigestInvalidFormat
            | ParseError::DigestInvalidLength
            | ParseError::DigestUnsupported => {
                ReferenceError::Digest(input.split_once('@').map_or(input, |(_, d)| d).to_owned())
            }
            _ if input.to_lowercase().parse::<OciReference>().is_ok() => name_of_input(),
            _ => ReferenceError::Format(input.to_owned()),
        })?;
        // A first component that is not a domain (`Team/app`) joins the repository without
        // oci-spec checking its case; Docker refuses it. Found by fuzzing (registry/fuzz).
        if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(name_of_input());
        }
        // oci-spec's `\w` is Unicode; the distribution grammar's (Go's) is ASCII.
        if parsed.tag().is_some_and(|t| !t.is_ascii()) {
            return Err(ReferenceError::Tag(input.to_owned()));
        }
        let digest = match parsed.digest() {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|_| ReferenceError::Digest(d.to_owned()))?,
            ),
            None => None,
        };
        if parsed.registry().len() + 1 + parsed.repository().len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        Ok(Self {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().map(str::to_owned),
            digest,
        })
    }

    /// The common case without a regex: oci-spec's reference regex (Unicode `\w{0,127}` tags)
    /// costs ~40 ms to compile, paid by every `berth` invocation that names an image, `run`
    /// included. References made only of lowercase ASCII path components (`[a-z0-9]+` joined by
    /// `.`, `_`, `__` or dashes), an optional ASCII tag and no digest are normalised here the
    /// way oci-spec does; anything else (`None`) goes to oci-spec. A unit test checks both
    /// agree.
    fn parse_simple(input: &str) -> Option<Self> {
        if input.len() > 255 || input.contains('@') {
            return None;
        }
        let last_slash = input.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match input[last_slash..].find(':') {
            Some(i) => (&input[..last_slash + i], Some(&input[last_slash + i + 1..])),
            None => (input, None),
        };
        if let Some(t) = tag {
            let ok = t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return None;
            }
        }
        let mut parts = name.split('/').collect::<Vec<_>>();
        // A first component with `.` or `:` or `localhost` is a registry.
        let first = *parts.first()?;
        let registry = if parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
            if !simple_host(first) {
                return None;
            }
            parts.remove(0);
            if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            }
        } else {
            DOCKER_HUB
        };
        if !parts.iter().all(|c| simple_component(c)) {
            return None;
        }
        if parts.len() == 1 && registry == DOCKER_HUB {
            parts.insert(0, "library");
        }
        let repository = parts.join("/");
        // The limit is on the normalised name (`docker.io/…` included), as Docker's; the slow
        // path says `TooLong`. Found by fuzzing (registry/fuzz, client_reference).
        if registry.len() + 1 + repository.len() > 255 {
            return None;
        }
        Some(Self {
            registry: registry.to_owned(),
            repository,
            tag: Some(tag.unwrap_or("latest").to_owned()),
            digest: None,
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
    /// Only an official image loses `library/`: `docker.io/library/a/b` stays `library/a/b`
    /// (`a/b` is another repository).
    #[must_use]
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
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

#[cfg(test)]
mod simple_tests {
    use super::*;

    /// The regex-free path must agree with oci-spec wherever it answers.
    #[test]
    fn the_simple_path_agrees_with_oci_spec() {
        use oci_spec::distribution::Reference as Oci;
        let inputs = [
            "busybox",
            "busybox:1",
            "bb:1",
            "library/busybox:latest",
            "team/app",
            "a/b/c:v1.2-rc_3",
            "my-app",
            "my--app",
            "my_app",
            "my__app",
            "my___app",
            "my.app",
            "my..app",
            "my._app",
            "a-.b",
            "-a",
            "a-",
            "a_",
            "_a",
            "A",
            "aB",
            "a:B",
            "a:.b",
            "a:-b",
            "a:_b",
            "a:",
            "a/",
            "/a",
            "a//b",
            "x:1:2",
            "localhost/a",
            "host.io/a",
            "host:5000/a:1",
            "a@sha256:0",
            "a:b@sha256:0",
            "café",
            "a:é",
            "9",
            "a/9-9",
            "a/b_c__d.e-f---g",
            "docker.io/busybox",
            "docker.io/library/busybox:1",
            "index.docker.io/x",
            "Host.io/a",
            "127.0.0.1:5000/x/y:t",
            "localhost:5000/a",
            "h-.io/a",
            "h.io:/a",
            "h.io:x/a",
            "h..io/a",
            "-h.io/a",
            "h.io/A",
            "ghcr.io/org/app:v1",
            "localhost",
        ];
        for input in inputs {
            let Some(simple) = Reference::parse_simple(input) else {
                continue;
            };
            let oci = input
                .parse::<Oci>()
                .unwrap_or_else(|e| panic!("{input}: simple accepted what oci-spec refuses: {e}"));
            assert_eq!(simple.registry, oci.registry(), "{input}");
            assert_eq!(simple.repository, oci.repository(), "{input}");
            assert_eq!(simple.tag.as_deref(), oci.tag(), "{input}");
        }
        // The common forms really take the fast path.
        for input in [
            "busybox",
            "bb:1",
            "team/app:v1",
            "my-app_x.y:1.0",
            "docker.io/library/bb:1",
            "127.0.0.1:5000/x/y:t",
        ] {
            assert!(Reference::parse_simple(input).is_some(), "{input}");
        }
        assert!(matches!(
            Reference::parse("127.0.0.1:1/bb:\u{fc}"),
            Err(ReferenceError::Tag(_))
        ));
        let long = format!("{}:1", "a".repeat(300));
        assert!(Reference::parse_simple(&long).is_none());
    }
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
    // Found by fuzzing: `blibrary/busybox` would name another repository.
    #[case(
        "docker.io/library/blibrary/busybox",
        "docker.io/library/blibrary/busybox:latest",
        "library/blibrary/busybox:latest"
    )]
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
    #[case("Busybox", "repository name (Busybox) must be lowercase")]
    #[case("Team/app:v1", "repository name (Team/app) must be lowercase")]
    #[case(
        "ghcr.io/Org/app:v1",
        "repository name (ghcr.io/Org/app) must be lowercase"
    )]
    #[case("busybox:", "invalid reference format")]
    #[case("busybox:-x", "invalid reference format")]
    #[case("busybox@sha256:12", "invalid reference format")]
    #[case("a//b", "invalid reference format")]
    #[case("-a", "invalid reference format")]
    #[case("host:port/app", "invalid reference format")]
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
        // Short enough as written, too long once `docker.io/` is added (fuzzing found it).
        let familiar = format!("a/{}:v2", "b".repeat(245));
        assert_eq!(Reference::parse(&familiar), Err(ReferenceError::TooLong));
        let fits = format!("a/{}:v2", "b".repeat(242));
        assert!(Reference::parse(&fits).is_ok());
    }
}
