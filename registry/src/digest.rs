//! Content digests: parsing (via `oci-spec`) and streaming computation.
//!
//! sha2 0.10 picks its SHA-NI implementation at run time on x86-64 CPUs that have it, which is
//! the "asm/SHA-NI path" (about 1.2 GB/s per core on the reference machine).

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256, Sha512};

/// Algorithms this registry can verify.
pub const SUPPORTED: &[&str] = &["sha256", "sha512"];

/// Parses a digest and checks that its algorithm is one this registry computes.
///
/// # Errors
/// A human-readable reason when the digest is malformed or its algorithm unsupported.
pub fn parse(s: &str) -> Result<Digest, String> {
    let d: Digest = s
        .parse()
        .map_err(|e| format!("invalid digest `{s}`: {e}"))?;
    match d.algorithm() {
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha512 => Ok(d),
        other => Err(format!(
            "unsupported digest algorithm `{}`; supported: {}",
            other.as_ref(),
            SUPPORTED.join(", ")
        )),
    }
}

/// An incremental hasher for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Box<Sha512>),
}

impl Hasher {
    /// A hasher for `alg`; `None` when unsupported.
    #[must_use]
    pub fn new(alg: &DigestAlgorithm) -> Option<Self> {
        match alg {
            DigestAlgorithm::Sha256 => Some(Self::Sha256(Sha256::new())),
            DigestAlgorithm::Sha512 => Some(Self::Sha512(Box::default())),
            _ => None,
        }
    }

    /// A hasher from the algorithm's name (`sha256`, `sha512`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::new(&DigestAlgorithm::from(name))
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// Name of the algorithm.
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Sha256(_) => "sha256",
            Self::Sha512(_) => "sha512",
        }
    }

    /// The digest of everything fed so far.
    #[must_use]
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Self::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Self::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        format!("{alg}:{hex}")
            .parse()
            .expect("computed digests are valid")
    }
}

/// The sha256 digest of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> Digest {
    let mut h = Hasher::Sha256(Sha256::new());
    h.update(data);
    h.finish()
}

/// Digest of `data` with the same algorithm as `like`.
#[must_use]
pub fn of_bytes_like(like: &Digest, data: &[u8]) -> Digest {
    let mut h = Hasher::new(like.algorithm()).unwrap_or(Hasher::Sha256(Sha256::new()));
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = Hasher::from_name("sha512").unwrap();
        h.update(b"abc");
        assert!(h
            .finish()
            .to_string()
            .starts_with("sha512:ddaf35a193617aba"));
    }

    #[test]
    fn parse_rejects_bad_and_unsupported() {
        assert!(parse("sha256:abc").is_err());
        assert!(
            parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")
                .is_err()
        );
        assert!(parse("nocolon").is_err());
        assert!(parse("md5:d41d8cd98f00b204e9800998ecf8427e")
            .unwrap_err()
            .contains("unsupported"));
        assert!(
            parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_ok()
        );
    }
}
