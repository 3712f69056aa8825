//! Authentication parsers, each fed the whole input:
//! - token scopes (`auth::access::parse_scopes`, one request parameter per line);
//! - the `Authorization` header (`auth::credentials`: Basic and Bearer);
//! - Bearer tokens (`auth::token::Keys::verify` / `verify_refresh`: JWT header, `kid`, `x5c`
//!   chains, signature and claims) against a fixed test key (`keys/`), also trusted as a root
//!   certificate as for an external token server;
//! - the client's `WWW-Authenticate` challenge parser (`berth_client::remote::parse_challenges`);
//! - repository globs of access rules (`auth::rules::glob`, pattern and name on two lines).
//!
//! Invariants: scopes print back to what parses to them; Basic credentials re-encode to the same
//! pair and the user has no `:`; a verified token has our issuer and audience; challenges print
//! (quoted, escaped) back to a header that parses to the same challenges; a glob without `*`
//! matches itself and `**` matches everything.
#![no_main]

use std::path::PathBuf;

use base64::Engine as _;
use berth_client::remote::{parse_challenges, Challenge};
use berth_config::registry_auth::TokenConfig;
use berth_registry::auth::access::{parse_scope, parse_scopes, scope_string};
use berth_registry::auth::rules::glob;
use berth_registry::auth::token::Keys;
use berth_registry::auth::{credentials, Credentials};
use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "berth-fuzz";
const SERVICE: &str = "registry.fuzz";

fn keys() -> &'static (TokenConfig, Keys) {
    static KEYS: std::sync::OnceLock<(TokenConfig, Keys)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys");
        let cfg = TokenConfig {
            issuer: ISSUER.into(),
            service: SERVICE.into(),
            expiry_secs: 300,
            key: Some(dir.join("token.key")),
            cert: Some(dir.join("token.crt")),
            realm: None,
            root_certificates: Some(dir.join("token.crt")),
        };
        // Nothing is written: key and certificate are given.
        let keys = Keys::load(&cfg, &std::env::temp_dir()).expect("test key loads");
        (cfg, keys)
    })
}

fn quote(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn print_challenges(cs: &[Challenge]) -> String {
    cs.iter()
        .map(|c| match c {
            Challenge::Basic => "Basic realm=\"r\"".to_owned(),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut s = format!("Bearer realm={}", quote(realm));
                if let Some(v) = service {
                    s.push_str(&format!(",service={}", quote(v)));
                }
                if let Some(v) = scope {
                    s.push_str(&format!(",scope={}", quote(v)));
                }
                s
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v);
        match credentials(&h) {
            Some(Credentials::Basic(user, password)) => {
                assert!(!user.contains(':'));
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{password}"));
                h.insert(
                    header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
                );
                assert!(matches!(
                    credentials(&h),
                    Some(Credentials::Basic(u, p)) if u == user && p == password
                ));
            }
            Some(Credentials::Bearer(t)) => assert!(!t.is_empty() && t.trim() == t),
            Some(Credentials::Malformed) => {}
            None => panic!("the header is there"),
        }
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    let scopes = parse_scopes(s.lines());
    for a in &scopes {
        assert_eq!(parse_scope(&a.to_string()).as_ref(), Some(a));
    }
    let printed = scope_string(&scopes);
    assert_eq!(parse_scopes([printed.as_str()]), scopes, "{printed:?}");

    let (cfg, keys) = keys();
    let token = s.trim();
    if let Ok(claims) = keys.verify(cfg, token) {
        assert_eq!(claims.iss, ISSUER);
        assert!(claims.aud == SERVICE || claims.aud.as_array().is_some_and(|a| a.iter().any(|x| x == SERVICE)));
    }
    let _ = keys.verify_refresh(cfg, token);

    let challenges = parse_challenges(s);
    for c in &challenges {
        if let Challenge::Bearer { realm, .. } = c {
            assert!(!realm.is_empty());
        }
    }
    let printed = print_challenges(&challenges);
    assert_eq!(parse_challenges(&printed), challenges, "{s:?} printed as {printed:?}");

    let (pattern, name) = s.split_once('\n').unwrap_or((s, s));
    if pattern.len() <= 64 {
        let _ = glob(pattern, name);
        assert!(glob("**", name));
        if !pattern.contains('*') {
            assert!(glob(pattern, pattern));
        }
    }
});
