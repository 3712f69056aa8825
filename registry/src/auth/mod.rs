//! Authentication and authorisation, as one tower layer in front of `/v2/…`.
//!
//! The one interface: [`Auth::authorize`] takes the request's headers and the accesses it needs
//! ([`access::needed`] maps every endpoint family of the parsed `crate::route::Route` to them,
//! e.g. `repository:team/app:pull,push`, `registry:catalog:*`) and returns the [`Identity`] or a
//! [`Denial`] that writes its own status, `WWW-Authenticate` challenge and error envelope.
//! Handlers never see credentials: [`layer`] puts the [`Identity`] in the request's (and the
//! response's, for the access log) extensions.
//!
//! Backends: [`htpasswd`] (Basic, bcrypt, with a cache of recent successes) and [`token`]
//! (Bearer JWTs from the built-in server in [`server`] or an external one). [`rules`] says who
//! may do what. Everything reloadable lives in one [`AuthState`] swapped whole by
//! [`Auth::reload`], so in-flight requests finish with the state they started with.
//!
//! May call: `berth_config`, `crate::route`. Called by: `crate::api` (layer and routes), `main`.

pub mod access;
pub mod htpasswd;
pub mod rules;
pub mod server;
pub mod token;
pub mod users;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_config::registry::{AuthConfig, TokenConfig};

use self::access::{Access, Action};
use self::htpasswd::{CredentialCache, Htpasswd};
use self::rules::Rules;
use self::token::Keys;

/// Why the auth configuration could not be loaded, or a user file changed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file could not be read or written.
    #[error("cannot use `{path}`")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key, certificate or value is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// Who made a request. Set by [`layer`] on the request and response extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name; `None` for anonymous clients (and when auth is off).
    pub user: Option<String>,
}

impl Identity {
    /// The name for logs: the user, or `-`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.user.as_deref().unwrap_or("-")
    }
}

/// Everything that reloads together.
pub struct AuthState {
    /// `[auth]` as loaded.
    pub config: AuthConfig,
    /// Users (empty without `htpasswd`).
    pub users: Htpasswd,
    /// Access rules.
    pub rules: Rules,
    /// Token keys, with `[auth.token]`.
    pub keys: Option<Keys>,
    /// Access tokens whose signature and claims were verified (see [`token::VerifiedTokens`]);
    /// reloading the keys replaces the whole state, and with it this cache.
    verified: token::VerifiedTokens,
}

impl AuthState {
    fn load(config: &AuthConfig, data_dir: &Path) -> Result<Self, AuthError> {
        let users = match &config.htpasswd {
            Some(p) => Htpasswd::load(p)?,
            None => Htpasswd::default(),
        };
        let keys = match &config.token {
            Some(t) => Some(Keys::load(t, data_dir)?),
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            users,
            rules: Rules::new(config),
            keys,
            verified: token::VerifiedTokens::default(),
        })
    }

    /// The token settings and keys, in token mode.
    fn token(&self) -> Option<(&TokenConfig, &Keys)> {
        self.config.token.as_ref().zip(self.keys.as_ref())
    }

    /// Actions `user` has on the resource of `access`, intersected with those it asks for.
    fn grant(&self, user: Option<&str>, access: &Access) -> Vec<Action> {
        let allowed = self.rules.allowed(user, &access.resource);
        let mut out: BTreeSet<Action> = BTreeSet::new();
        for a in &access.actions {
            if allowed.contains(a) {
                out.insert(*a);
            }
        }
        out.into_iter().collect()
    }
}

/// The authenticator: current state, credential cache, and how challenges are written.
pub struct Auth {
    state: RwLock<Arc<AuthState>>,
    cache: CredentialCache,
    data_dir: PathBuf,
    /// Whether the registry serves HTTPS (the built-in realm's scheme).
    tls: bool,
}

impl Auth {
    /// Loads users, rules and keys.
    ///
    /// # Errors
    /// When a file cannot be read or a key is unusable.
    pub fn new(config: &AuthConfig, data_dir: &Path, tls: bool) -> Result<Self, AuthError> {
        let state = AuthState::load(config, data_dir)?;
        Ok(Self {
            state: RwLock::new(Arc::new(state)),
            cache: CredentialCache::new(),
            data_dir: data_dir.to_owned(),
            tls,
        })
    }

    /// Replaces users, rules and keys; requests already running keep the previous state. On
    /// error the previous state stays.
    ///
    /// # Errors
    /// As [`Auth::new`].
    pub fn reload(&self, config: &AuthConfig) -> Result<(), AuthError> {
        let state = AuthState::load(config, &self.data_dir)?;
        *self.state.write().expect("auth state lock") = Arc::new(state);
        Ok(())
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> Arc<AuthState> {
        self.state.read().expect("auth state lock").clone()
    }

    /// Files whose change should trigger a reload.
    #[must_use]
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let s = self.state();
        let mut v: Vec<PathBuf> = s.config.htpasswd.iter().cloned().collect();
        if let Some(t) = &s.config.token {
            v.extend(t.key.iter().cloned());
            v.extend(t.cert.iter().cloned());
            v.extend(t.root_certificates.iter().cloned());
        }
        v
    }

    /// Checks a Basic `user`/`password` pair (cached, see [`htpasswd`]).
    pub async fn check_password(&self, state: &AuthState, user: &str, password: &str) -> bool {
        let ok = self.cache.verify(&state.users, user, password).await;
        if !ok {
            tracing::warn!(user, "authentication failed: wrong user name or password");
        }
        ok
    }

    /// Decides a request: the identity, or the denial to send.
    ///
    /// # Errors
    /// [`Denial`]: 401 with a challenge, or 403 for signed-in Basic users without the grant.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        needed: &[Access],
    ) -> Result<Identity, Denial> {
        let state = self.state();
        let challenge =
            |error: Option<&'static str>| self.challenge(&state, headers, needed, error);
        let credentials = credentials(headers);
        if let Some((config, keys)) = state.token() {
            let token = match credentials {
                Some(Credentials::Bearer(t)) => t,
                Some(Credentials::Basic(..)) | None => return Err(challenge(None)),
                Some(Credentials::Malformed) => return Err(challenge(Some("invalid_request"))),
            };
            let claims = match state.verified.verify(keys, config, &token) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(reason = %e, "bearer token refused");
                    return Err(challenge(Some("invalid_token")));
                }
            };
            let granted = |access: &Access| {
                claims.access.iter().any(|c| {
                    c.kind == access.resource.kind
                        && c.name == access.resource.name
                        && access
                            .actions
                            .iter()
                            .all(|a| c.actions.iter().any(|x| x == a.as_str() || x == "*"))
                })
            };
            if needed.iter().all(granted) {
                let user = (!claims.sub.is_empty()).then(|| claims.sub.clone());
                return Ok(Identity { user });
            }
            return Err(challenge(Some("insufficient_scope")));
        }
        let user = match credentials {
            None => None,
            Some(Credentials::Basic(user, password)) => {
                if !self.check_password(&state, &user, &password).await {
                    return Err(challenge(None));
                }
                Some(user)
            }
            Some(Credentials::Bearer(_) | Credentials::Malformed) => return Err(challenge(None)),
        };
        let all_granted = needed
            .iter()
            .all(|a| state.grant(user.as_deref(), a).len() == a.actions.len());
        match user {
            // `/v2/` (nothing needed) still asks anonymous clients to sign in, so that `docker
            // login` sees the challenge; anonymous pulls of content pass.
            None if needed.is_empty() || !all_granted => Err(challenge(None)),
            Some(_) if !all_granted => Err(Denial::denied(needed)),
            user => Ok(Identity { user }),
        }
    }

    fn challenge(
        &self,
        state: &AuthState,
        headers: &HeaderMap,
        needed: &[Access],
        error: Option<&'static str>,
    ) -> Denial {
        let value = match &state.config.token {
            None => "Basic realm=\"berth-registry\"".to_owned(),
            Some(t) => {
                let realm = t.realm.clone().unwrap_or_else(|| {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("localhost");
                    let scheme = if self.tls { "https" } else { "http" };
                    format!("{scheme}://{host}/auth/token")
                });
                let mut v = format!("Bearer realm=\"{realm}\",service=\"{}\"", t.service);
                if !needed.is_empty() {
                    v.push_str(&format!(",scope=\"{}\"", access::scope_string(needed)));
                }
                if let Some(e) = error {
                    v.push_str(&format!(",error=\"{e}\""));
                }
                v
            }
        };
        Denial {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(value),
            code: "UNAUTHORIZED",
            message: "authentication required",
            detail: needed.to_vec(),
        }
    }
}

/// A refused request: writes its status, challenge and `{"errors":[…]}` body.
#[derive(Debug)]
pub struct Denial {
    /// 401 or 403.
    pub status: StatusCode,
    /// `WWW-Authenticate` value (401 only).
    pub challenge: Option<String>,
    code: &'static str,
    message: &'static str,
    detail: Vec<Access>,
}

impl Denial {
    fn denied(needed: &[Access]) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            challenge: None,
            code: "DENIED",
            message: "requested access to the resource is denied",
            detail: needed.to_vec(),
        }
    }
}

impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        let detail: Vec<_> = self
            .detail
            .iter()
            .flat_map(|a| {
                a.actions.iter().map(|act| {
                    serde_json::json!({
                        "Type": a.resource.kind, "Name": a.resource.name, "Action": act.as_str()
                    })
                })
            })
            .collect();
        let body = serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": detail }]
        });
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}

/// Credentials of an `Authorization` header.
#[doc(hidden)] // public for the fuzz target (registry/fuzz)
pub enum Credentials {
    Basic(String, String),
    Bearer(String),
    Malformed,
}

/// Parses the `Authorization` header; `None` when there is none.
#[doc(hidden)] // public for the fuzz target (registry/fuzz)
pub fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Credentials::Malformed);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        return Some(match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((u, p)) => Credentials::Basic(u.to_owned(), p.to_owned()),
            None => Credentials::Malformed,
        });
    }
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Some(Credentials::Bearer(rest.to_owned()));
    }
    Some(Credentials::Malformed)
}

/// The tower layer (`axum::middleware::from_fn_with_state`): decides, then runs the handler with
/// the [`Identity`] in the request extensions, and copies it to the response's.
///
/// A read that the mirror routes by `?ns=REGISTRY` is checked under the name the mirror keeps
/// it as, `REGISTRY/NAME` (what the path-prefix form `/v2/REGISTRY/NAME/…` asks for too), so
/// rules can tell it from a local `NAME`; the routing decided here goes to the handler in the
/// request's extensions ([`crate::mirror::Target`]), so the grant checked is the one served.
pub async fn layer(
    State((auth, registry)): State<(Arc<Auth>, Arc<crate::service::Registry>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let route = crate::route::parse(rest).ok();
    let mut needed = access::needed(route.as_ref(), req.method(), req.uri().query());
    if let Some(target) = routed_by_ns(&registry, route.as_ref(), req.method(), req.uri().query()) {
        for a in &mut needed {
            a.resource = access::Resource::repository(&target.repo);
        }
        req.extensions_mut().insert(target);
    }
    match auth.authorize(req.headers(), &needed).await {
        Ok(identity) => {
            req.extensions_mut().insert(identity.clone());
            let logged = identity.user.clone().map(crate::api::identity::Identity);
            let mut resp = next.run(req).await;
            if let Some(l) = logged {
                // The access log (`crate::api::access_log`) reads the user from the response.
                resp.extensions_mut().insert(l);
            }
            resp.extensions_mut().insert(identity);
            resp
        }
        Err(denial) => {
            let mut resp = denial.into_response();
            resp.extensions_mut().insert(Identity { user: None });
            resp
        }
    }
}

/// Where the mirror sends a read carrying `?ns=` (`None`: not such a request, or served locally).
fn routed_by_ns(
    registry: &crate::service::Registry,
    route: Option<&crate::route::Route>,
    method: &axum::http::Method,
    query: Option<&str>,
) -> Option<crate::mirror::Target> {
    use crate::route::Route;
    let mirror = registry.mirror()?;
    if !matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD) {
        return None;
    }
    let name = match route? {
        Route::Manifest { name, .. } | Route::Blob { name, .. } | Route::Tags { name } => name,
        _ => return None,
    };
    let ns = form_urlencoded::parse(query?.as_bytes())
        .find(|(k, v)| k == "ns" && !v.is_empty())?
        .1;
    mirror.route(registry, name, Some(&ns))
}

/// Writes `data` to `path` (mode 0600) through a temporary file, fsync and rename; creates the
/// parent directory (0700) if missing.
///
/// # Errors
/// When any step fails.
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), AuthError> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::DirBuilderExt as _;
    let err = |source| AuthError::File {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let result = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs_err::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs_err::remove_file(&tmp);
        return Err(err(e));
    }
    if let Ok(d) = fs_err::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
