//! Bearer tokens (`spec-auth-jwt.md`): the built-in server's signing key, issuing, and verifying
//! tokens of the built-in server or of an external one trusted through `root_certificates`.
//!
//! Key management: the built-in server signs with ES256 (ECDSA P-256). Without `[auth.token] key`
//! the key is generated once into `<data_dir>/auth/token.key` (PKCS#8 PEM, mode 0600, written to a
//! temporary file, fsynced and renamed); its self-signed certificate goes to
//! `<data_dir>/auth/token.crt` (or `[auth.token] cert`). Every token header carries `kid` (the
//! RFC 7638 thumbprint of the public key) and `x5c` (that certificate), so a CNCF registry with
//! `rootcertbundle` = `token.crt` accepts the tokens; `/auth/jwks.json` publishes the key.
//!
//! Verifying: the header's `alg` must match the key's family (no `none`, no HMAC with a public
//! key), the key is found by `kid` (RFC 7638 or libtrust form), else through an `x5c` chain
//! ending at a root certificate, else by trying each trusted key; then `exp`/`nbf` (30 s leeway),
//! `iss` = issuer and `aud` = service.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use berth_config::registry::TokenConfig;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::AuthError;

/// Lifetime of refresh (identity) tokens.
pub const REFRESH_EXPIRY_SECS: u64 = 90 * 24 * 3600;

/// One entry of the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimAccess {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository name or `catalog`.
    pub name: String,
    /// Actions granted.
    pub actions: Vec<String>,
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user name, empty for anonymous.
    #[serde(default)]
    pub sub: String,
    /// Audience: the service (a string, as CNCF registry 2.x expects).
    pub aud: serde_json::Value,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before.
    #[serde(default)]
    pub nbf: u64,
    /// Issued at.
    #[serde(default)]
    pub iat: u64,
    /// Unique id.
    #[serde(default)]
    pub jti: String,
    /// What the bearer may do.
    #[serde(default)]
    pub access: Vec<ClaimAccess>,
}

/// Claims of a refresh token: who, and a digest of their htpasswd entry, so a changed password
/// or a removed user ends the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    iss: String,
    /// The user.
    pub sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    /// First 16 hex digits of SHA-256 of the user's htpasswd hash when issued.
    pub pwh: String,
}

/// Why a token was refused (logged; the client sees a challenge).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or a header we do not accept (`alg: none`, HMAC).
    #[error("malformed token or unsupported algorithm")]
    Malformed,
    /// No trusted key verifies the signature.
    #[error("no trusted key verifies the token's signature")]
    Signature,
    /// Signed by a trusted key but expired, not yet valid, or for another issuer or audience.
    #[error("token rejected: {0:?}")]
    Claims(jsonwebtoken::errors::ErrorKind),
}

/// A key that may sign tokens we accept.
#[derive(Clone)]
struct VerifyKey {
    kids: Vec<String>,
    family: Family,
    key: DecodingKey,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    P256,
    P384,
    Rsa,
}

impl Family {
    fn accepts(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        match self {
            Self::P256 => alg == A::ES256,
            Self::P384 => alg == A::ES384,
            Self::Rsa => matches!(
                alg,
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ),
        }
    }
}

/// The built-in server's key.
struct Signer {
    kid: String,
    encoding: EncodingKey,
    cert_der: Vec<u8>,
    jwk: serde_json::Value,
}

/// Signing and trusted keys of one configuration.
pub struct Keys {
    signer: Option<Signer>,
    trusted: Vec<VerifyKey>,
    roots: Vec<Vec<u8>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Keys {
    /// Loads (or, for the built-in server without `key`, generates) the keys of `cfg`.
    ///
    /// # Errors
    /// When a key or certificate cannot be read, parsed or written.
    pub fn load(cfg: &TokenConfig, data_dir: &Path) -> Result<Self, AuthError> {
        let mut keys = Self {
            signer: None,
            trusted: Vec::new(),
            roots: Vec::new(),
        };
        if cfg.built_in() {
            let signer = load_signer(cfg, data_dir)?;
            keys.trusted
                .push(verify_key_of_cert(&signer.cert_der).map_err(|reason| {
                    AuthError::Invalid(format!("token certificate: {reason}"))
                })?);
            keys.signer = Some(signer);
        }
        if let Some(path) = &cfg.root_certificates {
            for der in read_certs(path)? {
                let key = verify_key_of_cert(&der).map_err(|reason| {
                    AuthError::Invalid(format!("{}: {reason}", path.display()))
                })?;
                keys.trusted.push(key);
                keys.roots.push(der);
            }
        }
        Ok(keys)
    }

    /// The `kid` of the signing key, if this registry issues tokens.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|s| s.kid.as_str())
    }

    /// The JWK set of the signing key.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.signer.iter().map(|s| s.jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| AuthError::Invalid("this registry does not issue tokens".into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some(signer.kid.clone());
        header.x5c = Some(vec![STANDARD.encode(&signer.cert_der)]);
        jsonwebtoken::encode(&header, claims, &signer.encoding)
            .map_err(|e| AuthError::Invalid(format!("signing a token: {e}")))
    }

    /// An access token for `sub` with `access`; returns it and its lifetime.
    ///
    /// # Errors
    /// When this registry has no signing key.
    pub fn issue(
        &self,
        cfg: &TokenConfig,
        sub: &str,
        access: Vec<ClaimAccess>,
    ) -> Result<String, AuthError> {
        let t = now();
        self.sign(&AccessClaims {
            iss: cfg.issuer.clone(),
            sub: sub.to_owned(),
            aud: serde_json::Value::String(cfg.service.clone()),
            exp: t + cfg.expiry_secs,
            nbf: t.saturating_sub(1),
            iat: t,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        })
    }

    /// A refresh token for `sub`, bound to their current htpasswd `hash`.
    ///
    /// # Errors
    /// When this registry has no signing key.
    pub fn issue_refresh(
        &self,
        cfg: &TokenConfig,
        sub: &str,
        hash: &str,
    ) -> Result<String, AuthError> {
        let t = now();
        self.sign(&RefreshClaims {
            iss: cfg.issuer.clone(),
            sub: sub.to_owned(),
            aud: refresh_audience(cfg),
            exp: t + REFRESH_EXPIRY_SECS,
            iat: t,
            jti: uuid::Uuid::new_v4().to_string(),
            pwh: password_digest(hash),
        })
    }

    /// Verifies an access token for `cfg`'s issuer and service.
    ///
    /// # Errors
    /// [`TokenError`] saying why it is refused.
    pub fn verify(&self, cfg: &TokenConfig, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_as(token, &cfg.issuer, &cfg.service)
    }

    /// Verifies a refresh token this registry issued.
    ///
    /// # Errors
    /// [`TokenError`] saying why it is refused.
    pub fn verify_refresh(
        &self,
        cfg: &TokenConfig,
        token: &str,
    ) -> Result<RefreshClaims, TokenError> {
        // Only our own key issues refresh tokens.
        let own = self.signer.as_ref().ok_or(TokenError::Signature)?;
        let key = self
            .trusted
            .iter()
            .find(|k| k.kids.contains(&own.kid))
            .ok_or(TokenError::Signature)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&cfg.issuer]);
        v.set_audience(&[refresh_audience(cfg)]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<RefreshClaims>(token, &key.key, &v)
            .map(|d| d.claims)
            .map_err(classify)
    }

    fn verify_as<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(TokenError::Malformed);
        }
        let mut candidates: Vec<VerifyKey> = match &header.kid {
            Some(kid) => self
                .trusted
                .iter()
                .filter(|k| k.kids.iter().any(|x| x == kid))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        if candidates.is_empty() {
            if let Some(chain) = &header.x5c {
                if let Some(k) = self.key_of_chain(chain) {
                    candidates.push(k);
                }
            }
        }
        if candidates.is_empty() {
            candidates.clone_from(&self.trusted);
        }
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.leeway = 30;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        for key in candidates.iter().filter(|k| k.family.accepts(header.alg)) {
            match jsonwebtoken::decode::<T>(token, &key.key, &v) {
                Ok(d) => return Ok(d.claims),
                Err(e) => match classify(e) {
                    TokenError::Signature => {}
                    other => return Err(other),
                },
            }
        }
        Err(TokenError::Signature)
    }

    /// The leaf key of an `x5c` chain whose every certificate is issued by the next, the last
    /// by (or equal to) one of the root certificates.
    fn key_of_chain(&self, chain: &[String]) -> Option<VerifyKey> {
        let ders: Vec<Vec<u8>> = chain
            .iter()
            .map(|c| STANDARD.decode(c).ok())
            .collect::<Option<_>>()?;
        let certs: Vec<_> = ders
            .iter()
            .map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
            .collect::<Option<_>>()?;
        if certs.iter().any(|c| !c.validity().is_valid()) {
            return None;
        }
        for pair in certs.windows(2) {
            pair[0].verify_signature(Some(pair[1].public_key())).ok()?;
        }
        let (last, last_der) = (certs.last()?, ders.last()?);
        let anchored = self.roots.iter().any(|root| {
            root == last_der
                || x509_parser::parse_x509_certificate(root)
                    .is_ok_and(|(_, r)| last.verify_signature(Some(r.public_key())).is_ok())
        });
        anchored
            .then(|| verify_key_of_cert(&ders[0]).ok())
            .flatten()
    }
}

fn refresh_audience(cfg: &TokenConfig) -> String {
    format!("{}#refresh", cfg.service)
}

/// First 16 hex digits of SHA-256 of an htpasswd hash.
#[must_use]
pub fn password_digest(hash: &str) -> String {
    hex::encode(&Sha256::digest(hash.as_bytes())[..8])
}

fn classify(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::InvalidAlgorithm => {
            TokenError::Signature
        }
        K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) | K::MissingAlgorithm => {
            TokenError::Malformed
        }
        other => TokenError::Claims(other.clone()),
    }
}

fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>, AuthError> {
    let bytes = fs_err::read(path).map_err(|source| AuthError::File {
        path: path.to_owned(),
        source,
    })?;
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect();
    if certs.is_empty() {
        return Err(AuthError::Invalid(format!(
            "{}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The verification key of a certificate's public key, with its RFC 7638 and libtrust key ids.
fn verify_key_of_cert(der: &[u8]) -> Result<VerifyKey, String> {
    use x509_parser::public_key::PublicKey;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let spki = cert.public_key();
    let mut kids = vec![libtrust_kid(spki.raw)];
    let (family, key) = match spki.parsed().map_err(|e| e.to_string())? {
        PublicKey::EC(point) => {
            let raw = point.data();
            let (family, crv, len) = match raw.len() {
                65 => (Family::P256, "P-256", 32),
                97 => (Family::P384, "P-384", 48),
                n => return Err(format!("unsupported EC key ({n}-byte point)")),
            };
            kids.push(ec_thumbprint(crv, &raw[1..=len], &raw[len + 1..]));
            (family, DecodingKey::from_ec_der(raw))
        }
        PublicKey::RSA(rsa) => {
            let b64 = |b: &[u8]| {
                let b = b.iter().position(|&x| x != 0).map_or(b, |i| &b[i..]);
                URL_SAFE_NO_PAD.encode(b)
            };
            let jwk = format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64(rsa.exponent),
                b64(rsa.modulus)
            );
            kids.push(URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes())));
            (
                Family::Rsa,
                DecodingKey::from_rsa_der(&spki.subject_public_key.data),
            )
        }
        _ => return Err("unsupported key type (use ECDSA P-256/P-384 or RSA)".into()),
    };
    Ok(VerifyKey { kids, family, key })
}

/// RFC 7638 thumbprint of an EC public key.
fn ec_thumbprint(crv: &str, x: &[u8], y: &[u8]) -> String {
    let jwk = format!(
        r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
}

/// The key id docker/libtrust token servers use: base32 of the first 240 bits of SHA-256 of the
/// DER public key, in twelve groups of four separated by `:`.
fn libtrust_kid(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(spki_der);
    let mut out = String::new();
    for chunk in digest[..30].chunks(5) {
        let mut v: u64 = 0;
        for &b in chunk {
            v = (v << 8) | u64::from(b);
        }
        for i in (0..8).rev() {
            out.push(ALPHABET[((v >> (i * 5)) & 31) as usize] as char);
        }
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

fn load_signer(cfg: &TokenConfig, data_dir: &Path) -> Result<Signer, AuthError> {
    let dir = data_dir.join("auth");
    let key_path = cfg.key.clone().unwrap_or_else(|| dir.join("token.key"));
    let cert_path = cfg.cert.clone().unwrap_or_else(|| dir.join("token.crt"));
    if cfg.key.is_none() && !key_path.exists() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| AuthError::Invalid(format!("generating the token key: {e}")))?;
        super::write_private_file(&key_path, kp.serialize_pem().as_bytes())?;
        tracing::info!(path = %key_path.display(), "generated the token signing key (ES256)");
    }
    let pem = fs_err::read_to_string(&key_path).map_err(|source| AuthError::File {
        path: key_path.clone(),
        source,
    })?;
    let kp = rcgen::KeyPair::from_pem(&pem)
        .map_err(|e| AuthError::Invalid(format!("{}: {e}", key_path.display())))?;
    if !kp.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
        return Err(AuthError::Invalid(format!(
            "{}: the token key must be ECDSA P-256 (ES256)",
            key_path.display()
        )));
    }
    let raw = kp.public_key_raw().to_vec();
    let cert_der = match read_certs(&cert_path) {
        Ok(certs) if cert_matches(&certs[0], &raw) => certs[0].clone(),
        Ok(_) if cfg.cert.is_some() => {
            return Err(AuthError::Invalid(format!(
                "{}: this certificate is not for the token key {}",
                cert_path.display(),
                key_path.display()
            )))
        }
        Err(e) if cfg.cert.is_some() => return Err(e),
        _ => self_signed(cfg, &kp, &cert_path)?,
    };
    let (x, y) = (&raw[1..33], &raw[33..65]);
    let kid = ec_thumbprint("P-256", x, y);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        "x5c": [STANDARD.encode(&cert_der)],
    });
    let encoding = EncodingKey::from_ec_der(&kp.serialize_der());
    Ok(Signer {
        kid,
        encoding,
        cert_der,
        jwk,
    })
}

fn cert_matches(der: &[u8], raw_public: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, c)| c.public_key().subject_public_key.data.as_ref() == raw_public)
}

fn self_signed(cfg: &TokenConfig, kp: &rcgen::KeyPair, path: &Path) -> Result<Vec<u8>, AuthError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("{} token signer", cfg.issuer),
    );
    let cert = params
        .self_signed(kp)
        .map_err(|e| AuthError::Invalid(format!("making the token certificate: {e}")))?;
    super::write_private_file(path, cert.pem().as_bytes())?;
    tracing::info!(path = %path.display(), "wrote the token signing certificate (for `rootcertbundle`)");
    Ok(cert.der().to_vec())
}

/// Access tokens already verified, by the SHA-256 of their text, until their `exp`.
///
/// An ES256 verification costs tens of microseconds, paid on every request of a pull; a client
/// sends the same token for its whole pull, so after the first request a lookup suffices. The
/// same bytes always carry the same claims, so nothing is trusted that was not verified; entries
/// are honoured only until `exp` (without the leeway the first check allows), the map is bounded,
/// and it lives in the reloadable auth state, so new keys start from an empty cache.
#[derive(Default)]
pub struct VerifiedTokens {
    map: std::sync::Mutex<HashMap<[u8; 32], Arc<AccessClaims>>>,
}

/// Verified tokens kept at most.
const VERIFIED_TOKENS_MAX: usize = 4096;

impl VerifiedTokens {
    /// The claims of `token`, from the cache or verified by `keys`.
    ///
    /// # Errors
    /// [`TokenError`] saying why it is refused.
    pub fn verify(
        &self,
        keys: &Keys,
        cfg: &TokenConfig,
        token: &str,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let id: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let t = now();
        let lock = || {
            self.map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(c) = lock().get(&id).filter(|c| c.exp > t) {
            return Ok(c.clone());
        }
        let claims = Arc::new(keys.verify(cfg, token)?);
        let mut map = lock();
        if map.len() >= VERIFIED_TOKENS_MAX {
            map.retain(|_, c| c.exp > t);
            if map.len() >= VERIFIED_TOKENS_MAX {
                map.clear();
            }
        }
        map.insert(id, claims.clone());
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(expiry_secs: u64) -> TokenConfig {
        TokenConfig {
            issuer: "berth-test".into(),
            service: "registry.test".into(),
            expiry_secs,
            key: None,
            cert: None,
            realm: None,
            root_certificates: None,
        }
    }

    #[test]
    fn verified_tokens_are_reused_until_they_expire_and_bad_ones_never_enter() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(300);
        let keys = Keys::load(&cfg, dir.path()).unwrap();
        let cache = VerifiedTokens::default();
        let token = keys.issue(&cfg, "alice", Vec::new()).unwrap();
        let a = cache.verify(&keys, &cfg, &token).unwrap();
        let b = cache.verify(&keys, &cfg, &token).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second check is a lookup");
        assert_eq!(b.sub, "alice");
        // A token for another service is refused, and stays refused.
        let other = config(300);
        let other = TokenConfig {
            service: "elsewhere".into(),
            ..other
        };
        let foreign = keys.issue(&other, "alice", Vec::new()).unwrap();
        assert!(cache.verify(&keys, &cfg, &foreign).is_err());
        assert!(cache.verify(&keys, &cfg, &foreign).is_err());
        // An entry past its expiry is not used: the token goes through verification again.
        let id: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut expired = (*a).clone();
        expired.exp = now() - 1;
        expired.sub = "mallory".into();
        cache.map.lock().unwrap().insert(id, Arc::new(expired));
        assert_eq!(cache.verify(&keys, &cfg, &token).unwrap().sub, "alice");
    }
}
