//! Registry authentication (`specs/distribution/spec-auth-token.md`): `WWW-Authenticate`
//! challenges, the token request to the realm, and a per-scope token cache.
//!
//! A `Bearer` challenge makes us `GET realm?service=…&scope=…` with Basic credentials when the
//! user has some for the registry (anonymous otherwise) and send the returned token; a `Basic`
//! challenge makes us send the credentials themselves. Only [`super::client`] calls this module.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::{self, RemoteError, Result};

/// What a request needs access to, which decides the token's `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// No particular resource (`GET /v2/`, search).
    None,
    /// `repository:<repo>:pull`
    Pull(String),
    /// `repository:<repo>:pull,push`
    Push(String),
    /// `repository:<repo>:pull,push` and `repository:<from>:pull` (cross-repository mount).
    Mount {
        /// Target repository.
        repo: String,
        /// Source repository.
        from: String,
    },
    /// `registry:catalog:*`
    Catalog,
}

impl Scope {
    /// The `scope` parameters of the token request.
    #[must_use]
    pub fn params(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::Pull(r) => vec![format!("repository:{r}:pull")],
            Self::Push(r) => vec![format!("repository:{r}:pull,push")],
            Self::Mount { repo, from } => vec![
                format!("repository:{repo}:pull,push"),
                format!("repository:{from}:pull"),
            ],
            Self::Catalog => vec!["registry:catalog:*".into()],
        }
    }

    /// The cache key the token for this scope is stored under.
    fn key(&self) -> String {
        self.params().join(" ")
    }

    /// Keys of cached tokens that are good enough for this scope (a push token also pulls).
    fn acceptable_keys(&self) -> Vec<String> {
        match self {
            Self::Pull(r) => vec![self.key(), Self::Push(r.clone()).key()],
            _ => vec![self.key()],
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`
    Bearer {
        /// Token service URL.
        realm: String,
        /// `service` parameter to send back.
        service: Option<String>,
        /// `scope` the registry asked for, used when we have none of our own.
        scope: Option<String>,
    },
}

/// Parses the challenges of one `WWW-Authenticate` header value; `Bearer` first when several.
#[must_use]
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = match rest.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        let scheme = scheme.trim_matches(',');
        let (params, next) = parse_params(after);
        rest = next.trim_start_matches([',', ' ']);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = params.get("realm").filter(|r| !r.is_empty()) {
                    out.push(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
            }
            _ => {}
        }
        if scheme.is_empty() {
            break;
        }
    }
    out.sort_by_key(|c| matches!(c, Challenge::Basic));
    out
}

/// `k=v, k="quoted \" value"` pairs until a token without `=` (the next challenge's scheme).
fn parse_params(mut s: &str) -> (HashMap<String, String>, &str) {
    let mut params = HashMap::new();
    loop {
        s = s.trim_start_matches([',', ' ', '\t']);
        let Some(eq) = s.find('=') else {
            return (params, s);
        };
        let key = &s[..eq];
        if key.is_empty() || key.contains([' ', ',', '\t']) {
            return (params, s);
        }
        let after = &s[eq + 1..];
        let (value, rest) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key.to_ascii_lowercase(), value);
        s = rest;
    }
}

/// A token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// What a [`super::Client`] knows about authenticating to its registry.
#[derive(Debug, Default)]
pub struct AuthState {
    /// The last challenge the registry sent.
    pub challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

impl AuthState {
    /// A cached, unexpired token for `scope`.
    #[must_use]
    pub fn token(&self, scope: &Scope) -> Option<String> {
        let now = Instant::now();
        scope
            .acceptable_keys()
            .iter()
            .filter_map(|k| self.tokens.get(k))
            .find(|t| t.expires > now)
            .map(|t| t.value.clone())
    }

    /// Remembers a token.
    pub fn store(&mut self, scope: &Scope, value: String, lifetime: Duration) {
        // Renew a little early so a token does not expire mid-request.
        let lifetime = lifetime
            .saturating_sub(Duration::from_secs(10))
            .max(Duration::from_secs(5));
        self.tokens.insert(
            scope.key(),
            Token {
                value,
                expires: Instant::now() + lifetime,
            },
        );
    }

    /// Forgets the tokens usable for `scope` (after the registry refused one).
    pub fn forget(&mut self, scope: &Scope) {
        for k in scope.acceptable_keys() {
            self.tokens.remove(&k);
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Asks the token service for a token; `basic` is sent when given. Returns the token and its
/// lifetime (at least 60 s, as the spec says to assume).
///
/// # Errors
/// Transport errors, 401 (bad credentials) and other failures of the token service.
pub async fn fetch_token(
    http: &reqwest::Client,
    user_agent: &str,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    basic: Option<&(String, String)>,
) -> Result<(String, Duration)> {
    let mut url = reqwest::Url::parse(realm).map_err(|e| RemoteError::InvalidResponse {
        url: realm.to_owned(),
        reason: format!("the token realm is not a URL: {e}"),
    })?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
    }
    let mut req = http
        .get(url.clone())
        .header(reqwest::header::USER_AGENT, user_agent);
    if let Some((user, pass)) = basic {
        req = req.basic_auth(user, Some(pass));
    }
    let resp = req.send().await.map_err(|source| RemoteError::Transport {
        url: url.to_string(),
        source,
    })?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|source| RemoteError::Transport {
            url: url.to_string(),
            source,
        })?;
    if status >= 400 {
        return Err(error::from_status(
            "GET",
            url.as_str(),
            registry,
            status,
            None,
            &body,
            basic.is_some(),
        ));
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| RemoteError::InvalidResponse {
            url: url.to_string(),
            reason: format!("token response is not JSON: {e}"),
        })?;
    let token = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| RemoteError::InvalidResponse {
            url: url.to_string(),
            reason: "token response has neither `token` nor `access_token`".into(),
        })?;
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(60));
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        Challenge::Bearer { realm: "https://auth.docker.io/token".into(), service: Some("registry.docker.io".into()), scope: Some("repository:library/busybox:pull".into()) }
    )]
    #[case(
        r#"bearer realm="http://127.0.0.1:1/t", service=reg"#,
        Challenge::Bearer { realm: "http://127.0.0.1:1/t".into(), service: Some("reg".into()), scope: None }
    )]
    #[case(r#"Basic realm="basic-realm""#, Challenge::Basic)]
    #[case(r#"Basic realm="a, \"b\"""#, Challenge::Basic)]
    fn challenges(#[case] header: &str, #[case] expected: Challenge) {
        assert_eq!(parse_challenges(header), vec![expected]);
    }

    #[test]
    fn several_challenges_prefer_bearer_and_garbage_is_empty() {
        let c = parse_challenges(r#"Basic realm="x", Bearer realm="https://a/t",service="s""#);
        assert_eq!(c.len(), 2);
        assert!(matches!(c[0], Challenge::Bearer { .. }));
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("Bearer").is_empty());
        assert!(parse_challenges("Negotiate abc").is_empty());
    }

    #[test]
    fn push_tokens_serve_pulls_but_not_the_reverse() {
        let mut s = AuthState::default();
        s.store(
            &Scope::Push("a".into()),
            "T".into(),
            Duration::from_secs(300),
        );
        assert_eq!(s.token(&Scope::Pull("a".into())).as_deref(), Some("T"));
        assert_eq!(s.token(&Scope::Pull("b".into())), None);
        let mut s = AuthState::default();
        s.store(
            &Scope::Pull("a".into()),
            "P".into(),
            Duration::from_secs(300),
        );
        assert_eq!(s.token(&Scope::Push("a".into())), None);
        s.forget(&Scope::Pull("a".into()));
        assert_eq!(s.token(&Scope::Pull("a".into())), None);
        assert_eq!(
            Scope::Mount {
                repo: "a".into(),
                from: "b".into()
            }
            .params(),
            ["repository:a:pull,push", "repository:b:pull"]
        );
    }
}
