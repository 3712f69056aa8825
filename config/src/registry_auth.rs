//! The `[tls]`, `[auth]`, `[auth.token]`, `[auth.groups]` and `[[auth.access]]` sections of the
//! registry configuration: their file form, their `BERTH_REGISTRY_*` variables and validation.
//!
//! ```toml
//! [tls]
//! cert = "/etc/berth/registry.crt"     # PEM chain, leaf first
//! key = "/etc/berth/registry.key"      # PEM private key (PKCS#8, SEC1 or PKCS#1)
//! client_ca = "/etc/berth/clients.crt" # optional: require client certificates (mTLS)
//!
//! [auth]
//! htpasswd = "/etc/berth/htpasswd"     # bcrypt entries, as `htpasswd -B` writes them
//! anonymous_pull = false               # anonymous clients may pull every repository
//!
//! [auth.token]                         # optional: Bearer tokens instead of Basic
//! issuer = "berth-registry"            # `iss` of issued tokens, and the one accepted
//! service = "berth-registry"           # `aud` of tokens, the challenge's `service`
//! expiry_secs = 300
//! key = "/etc/berth/token.key"         # optional; generated in the data dir when absent
//! # An external token server instead of the built-in one:
//! # realm = "https://auth.example.com/token"
//! # root_certificates = "/etc/berth/token-ca.pem"
//!
//! [auth.groups]
//! devs = ["alice", "bob"]
//!
//! [[auth.access]]
//! repositories = ["team/*"]            # globs: `*` within one path component, `**` across
//! users = ["alice", "anonymous"]       # `anonymous`: no credentials; `*`: any signed-in user
//! groups = ["devs"]
//! actions = ["pull", "push"]           # pull, push, delete, catalog, `*` (all of them)
//! ```
//!
//! Every key has a variable: `BERTH_REGISTRY_TLS_CERT`, `BERTH_REGISTRY_AUTH_HTPASSWD`,
//! `BERTH_REGISTRY_AUTH_TOKEN_ISSUER`, … The list and table keys take TOML values:
//! `BERTH_REGISTRY_AUTH_ACCESS='[{repositories=["**"], users=["*"], actions=["*"]}]'`,
//! `BERTH_REGISTRY_AUTH_GROUPS='{devs=["alice"]}'`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::registry::{invalid, Result};

/// `[tls]`: serve HTTPS (HTTP/1.1 and HTTP/2) with this certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM bundle of CAs whose client certificates are required (mTLS); `None`: no client certs.
    pub client_ca: Option<PathBuf>,
}

/// `[auth]`: who may do what.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// htpasswd file of bcrypt entries (Basic credentials, and the token server's users).
    pub htpasswd: Option<PathBuf>,
    /// Anonymous clients may pull every repository.
    pub anonymous_pull: bool,
    /// `[auth.token]`: Bearer tokens (built-in or external token server).
    pub token: Option<TokenConfig>,
    /// `[auth.groups]`: group name → user names.
    pub groups: BTreeMap<String, Vec<String>>,
    /// `[[auth.access]]` rules; empty: every signed-in user may do everything.
    pub access: Vec<AccessRule>,
}

/// `[auth.token]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// Issuer (`iss`) of the tokens accepted, and of those the built-in server issues.
    pub issuer: String,
    /// Service name: the tokens' audience (`aud`) and the challenge's `service`.
    pub service: String,
    /// Lifetime of issued access tokens.
    pub expiry_secs: u64,
    /// Signing key (PEM, P-256) of the built-in server; generated in the data dir when `None`.
    pub key: Option<PathBuf>,
    /// Certificate of `key` for the tokens' `x5c` (self-signed one made when `None`).
    pub cert: Option<PathBuf>,
    /// External token server: the challenge's realm. `None`: the built-in `/auth/token`.
    pub realm: Option<String>,
    /// PEM bundle whose certificates' keys may sign tokens (external token servers).
    pub root_certificates: Option<PathBuf>,
}

impl TokenConfig {
    /// Whether this registry issues tokens itself (no external `realm`).
    #[must_use]
    pub fn built_in(&self) -> bool {
        self.realm.is_none()
    }
}

/// One `[[auth.access]]` rule: these users and groups may do `actions` on `repositories`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Repository globs: `*` matches within one `/` component, `**` any number of them.
    pub repositories: Vec<String>,
    /// User names; `anonymous` is a client without credentials, `*` any signed-in user.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names from `[auth.groups]`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `pull`, `push`, `delete`, `catalog` (list `/v2/_catalog`), or `*`.
    pub actions: Vec<String>,
}

/// Actions a rule may name.
pub const ACTIONS: [&str; 5] = ["pull", "push", "delete", "catalog", "*"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileAuth {
    htpasswd: Option<PathBuf>,
    anonymous_pull: Option<bool>,
    token: Option<FileToken>,
    groups: Option<BTreeMap<String, Vec<String>>>,
    access: Option<Vec<AccessRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileToken {
    issuer: Option<String>,
    service: Option<String>,
    expiry_secs: Option<u64>,
    key: Option<PathBuf>,
    cert: Option<PathBuf>,
    realm: Option<String>,
    root_certificates: Option<PathBuf>,
}

/// Flags of `serve` that set keys of these sections.
#[derive(Debug, Default, Clone)]
pub struct AuthOverrides {
    /// `--tls-cert`
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`
    pub tls_key: Option<PathBuf>,
    /// `--htpasswd`
    pub htpasswd: Option<PathBuf>,
}

/// Applies the `BERTH_REGISTRY_TLS_*` / `BERTH_REGISTRY_AUTH_*` variables, then the flags.
pub(crate) fn overlay(
    tls: &mut Option<FileTls>,
    auth: &mut Option<FileAuth>,
    env: &dyn Fn(&str) -> Option<String>,
    cli: &AuthOverrides,
) -> Result<()> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let path = |name: &str| env(name).map(PathBuf::from);
    if let Some(v) = path("BERTH_REGISTRY_TLS_CERT") {
        tls.get_or_insert_with(Default::default).cert = Some(v);
    }
    if let Some(v) = path("BERTH_REGISTRY_TLS_KEY") {
        tls.get_or_insert_with(Default::default).key = Some(v);
    }
    if let Some(v) = path("BERTH_REGISTRY_TLS_CLIENT_CA") {
        tls.get_or_insert_with(Default::default).client_ca = Some(v);
    }
    if let Some(v) = &cli.tls_cert {
        tls.get_or_insert_with(Default::default).cert = Some(v.clone());
    }
    if let Some(v) = &cli.tls_key {
        tls.get_or_insert_with(Default::default).key = Some(v.clone());
    }

    if let Some(v) = path("BERTH_REGISTRY_AUTH_HTPASSWD") {
        auth.get_or_insert_with(Default::default).htpasswd = Some(v);
    }
    if let Some(v) = env("BERTH_REGISTRY_AUTH_ANONYMOUS_PULL") {
        auth.get_or_insert_with(Default::default).anonymous_pull = Some(
            crate::registry::parse_bool("BERTH_REGISTRY_AUTH_ANONYMOUS_PULL", &v)?,
        );
    }
    if let Some(v) = env("BERTH_REGISTRY_AUTH_GROUPS") {
        #[derive(Deserialize)]
        struct G {
            groups: BTreeMap<String, Vec<String>>,
        }
        let g: G = toml::from_str(&format!("groups = {v}"))
            .map_err(|e| invalid("BERTH_REGISTRY_AUTH_GROUPS", e.message().to_owned()))?;
        auth.get_or_insert_with(Default::default).groups = Some(g.groups);
    }
    if let Some(v) = env("BERTH_REGISTRY_AUTH_ACCESS") {
        #[derive(Deserialize)]
        struct A {
            access: Vec<AccessRule>,
        }
        let a: A = toml::from_str(&format!("access = {v}"))
            .map_err(|e| invalid("BERTH_REGISTRY_AUTH_ACCESS", e.message().to_owned()))?;
        auth.get_or_insert_with(Default::default).access = Some(a.access);
    }
    let token_vars = [
        "ISSUER",
        "SERVICE",
        "EXPIRY_SECS",
        "KEY",
        "CERT",
        "REALM",
        "ROOT_CERTIFICATES",
    ];
    for var in token_vars {
        let name = format!("BERTH_REGISTRY_AUTH_TOKEN_{var}");
        let Some(v) = env(&name) else { continue };
        let t = auth
            .get_or_insert_with(Default::default)
            .token
            .get_or_insert_with(Default::default);
        match var {
            "ISSUER" => t.issuer = Some(v),
            "SERVICE" => t.service = Some(v),
            "EXPIRY_SECS" => t.expiry_secs = Some(crate::registry::parse_u64(&name, &v)?),
            "KEY" => t.key = Some(v.into()),
            "CERT" => t.cert = Some(v.into()),
            "REALM" => t.realm = Some(v),
            _ => t.root_certificates = Some(v.into()),
        }
    }
    if let Some(v) = &cli.htpasswd {
        auth.get_or_insert_with(Default::default).htpasswd = Some(v.clone());
    }
    Ok(())
}

/// Validates the sections.
pub(crate) fn build(
    tls: Option<FileTls>,
    auth: Option<FileAuth>,
) -> Result<(Option<TlsConfig>, Option<AuthConfig>)> {
    let tls = match tls {
        None => None,
        Some(t) => Some(TlsConfig {
            cert: t
                .cert
                .ok_or_else(|| invalid("tls.cert", "required with [tls] (or --tls-cert)".into()))?,
            key: t
                .key
                .ok_or_else(|| invalid("tls.key", "required with [tls] (or --tls-key)".into()))?,
            client_ca: t.client_ca,
        }),
    };
    let Some(a) = auth else {
        return Ok((tls, None));
    };
    let token = match a.token {
        None => None,
        Some(t) => {
            let expiry_secs = t.expiry_secs.unwrap_or(300);
            if !(10..=86_400).contains(&expiry_secs) {
                return Err(invalid(
                    "auth.token.expiry_secs",
                    format!("{expiry_secs} is outside 10..=86400"),
                ));
            }
            if t.realm.is_some() && t.root_certificates.is_none() {
                return Err(invalid(
                    "auth.token.root_certificates",
                    "required with an external `realm`: the certificates whose keys sign its tokens"
                        .into(),
                ));
            }
            Some(TokenConfig {
                issuer: t.issuer.unwrap_or_else(|| "berth-registry".into()),
                service: t.service.unwrap_or_else(|| "berth-registry".into()),
                expiry_secs,
                key: t.key,
                cert: t.cert,
                realm: t.realm,
                root_certificates: t.root_certificates,
            })
        }
    };
    let builtin_token = token.as_ref().is_some_and(TokenConfig::built_in);
    if a.htpasswd.is_none() && token.is_none() {
        return Err(invalid(
            "auth.htpasswd",
            "[auth] needs `htpasswd` (users) or an [auth.token] section".into(),
        ));
    }
    if builtin_token && a.htpasswd.is_none() && !a.anonymous_pull.unwrap_or(false) {
        return Err(invalid(
            "auth.htpasswd",
            "the built-in token server needs users (`htpasswd`) or `anonymous_pull`".into(),
        ));
    }
    let access = a.access.unwrap_or_default();
    for (i, rule) in access.iter().enumerate() {
        if let Some(bad) = rule.actions.iter().find(|x| !ACTIONS.contains(&x.as_str())) {
            return Err(invalid(
                &format!("auth.access[{i}].actions"),
                format!("`{bad}` is not one of pull, push, delete, catalog, *"),
            ));
        }
        if rule.repositories.is_empty() {
            return Err(invalid(
                &format!("auth.access[{i}].repositories"),
                "must name at least one glob (`**` for all)".into(),
            ));
        }
    }
    Ok((
        tls,
        Some(AuthConfig {
            htpasswd: a.htpasswd,
            anonymous_pull: a.anonymous_pull.unwrap_or(false),
            token,
            groups: a.groups.unwrap_or_default(),
            access,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::RegistryConfig;

    fn load(text: &str, env: &[(&str, &str)]) -> crate::registry::Result<RegistryConfig> {
        crate::registry::load_text(text, env)
    }

    #[test]
    fn sections_parse() {
        let c = load(
            "[tls]\ncert = \"c\"\nkey = \"k\"\n[auth]\nhtpasswd = \"h\"\n[auth.token]\nexpiry_secs = 60\n\
             [auth.groups]\ndevs = [\"a\"]\n[[auth.access]]\nrepositories = [\"team/*\"]\ngroups = [\"devs\"]\nactions = [\"pull\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().cert.to_str(), Some("c"));
        let auth = c.auth.unwrap();
        assert_eq!(auth.token.unwrap().expiry_secs, 60);
        assert_eq!(auth.access[0].groups, ["devs"]);
        assert_eq!(auth.groups["devs"], ["a"]);
        assert!(c.delete_enabled, "deletes default on with auth");
    }

    #[test]
    fn env_sets_every_section() {
        let c = load(
            "",
            &[
                ("BERTH_REGISTRY_AUTH_HTPASSWD", "/h"),
                ("BERTH_REGISTRY_AUTH_ANONYMOUS_PULL", "true"),
                ("BERTH_REGISTRY_AUTH_TOKEN_REALM", "https://x/t"),
                ("BERTH_REGISTRY_AUTH_TOKEN_ROOT_CERTIFICATES", "/r.pem"),
                (
                    "BERTH_REGISTRY_AUTH_ACCESS",
                    "[{repositories=[\"**\"], users=[\"*\"], actions=[\"*\"]}]",
                ),
                ("BERTH_REGISTRY_AUTH_GROUPS", "{ops=[\"x\"]}"),
                ("BERTH_REGISTRY_TLS_CERT", "/c"),
                ("BERTH_REGISTRY_TLS_KEY", "/k"),
            ],
        )
        .unwrap();
        let a = c.auth.unwrap();
        assert!(a.anonymous_pull);
        assert!(!a.token.unwrap().built_in());
        assert_eq!(a.access.len(), 1);
        assert_eq!(a.groups["ops"], ["x"]);
        assert!(c.tls.is_some());
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("[tls]\ncert = \"c\"", "tls.key"),
            ("[auth]\nanonymous_pull = true", "auth.htpasswd"),
            (
                "[auth]\nhtpasswd = \"h\"\n[[auth.access]]\nrepositories = [\"a\"]\nactions = [\"write\"]",
                "auth.access[0].actions",
            ),
            (
                "[auth]\nhtpasswd = \"h\"\n[auth.token]\nrealm = \"https://a\"",
                "auth.token.root_certificates",
            ),
        ] {
            let e = load(text, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{e} should name {key}");
        }
    }

    #[test]
    fn no_auth_means_no_deletes() {
        let c = load("", &[]).unwrap();
        assert!(c.auth.is_none());
        assert!(!c.delete_enabled);
    }
}
