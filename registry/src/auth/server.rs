//! The built-in token server: `GET /auth/token` (`spec-auth-token.md`), the OAuth2 form
//! `POST /auth/token` (`spec-auth-oauth.md`, `grant_type=password|refresh_token`) and
//! `/auth/jwks.json`. Reachable without authentication; it authenticates itself.
//!
//! A token grants the intersection of the scopes asked for and what [`super::rules`] allow the
//! user (or `anonymous`). Refresh tokens (`offline_token=true`, `access_type=offline`, as
//! `docker login` asks) are issued to signed-in users only and stop working when the user's
//! htpasswd entry changes or goes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::access::{self, Access};
use super::token::{password_digest, ClaimAccess};
use super::{credentials, Auth, AuthState, Credentials};

/// `/auth/token` (GET and POST) and `/auth/jwks.json`.
pub fn routes(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/auth/token", get(get_token).post(post_token))
        .route("/auth/jwks.json", get(jwks))
        .with_state(auth)
}

async fn jwks(State(auth): State<Arc<Auth>>) -> Response {
    let state = auth.state();
    let body = state.keys.as_ref().map_or_else(
        || serde_json::json!({ "keys": [] }),
        super::token::Keys::jwks,
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str, basic: bool) -> Response {
    let body = serde_json::json!({
        "errors": [{ "code": code, "message": message }],
        "error": if status == StatusCode::UNAUTHORIZED { "invalid_grant" } else { "invalid_request" },
        "error_description": message,
    });
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if basic {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"berth-registry\""),
        );
    }
    resp
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required: wrong user name or password",
        true,
    )
}

/// The grants of `user` for the scopes asked for.
fn grants(state: &AuthState, user: Option<&str>, scopes: &[Access]) -> Vec<ClaimAccess> {
    let mut out: Vec<ClaimAccess> = Vec::new();
    for s in scopes {
        let actions = state.grant(user, s);
        if actions.is_empty() {
            continue;
        }
        let actions: Vec<String> = actions.iter().map(|a| a.as_str().to_owned()).collect();
        match out
            .iter_mut()
            .find(|c| c.kind == s.resource.kind && c.name == s.resource.name)
        {
            Some(c) => {
                for a in actions {
                    if !c.actions.contains(&a) {
                        c.actions.push(a);
                    }
                }
            }
            None => out.push(ClaimAccess {
                kind: s.resource.kind.clone(),
                name: s.resource.name.clone(),
                actions,
            }),
        }
    }
    out
}

struct Issue<'a> {
    user: Option<String>,
    scopes: Vec<Access>,
    service: Option<&'a str>,
    refresh: bool,
    oauth: bool,
}

fn issue(state: &AuthState, req: Issue<'_>) -> Response {
    let Some((cfg, keys)) = state.token() else {
        return error(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "no token server here",
            false,
        );
    };
    if !cfg.built_in() {
        return error(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "tokens come from an external server",
            false,
        );
    }
    if let Some(s) = req.service {
        if s != cfg.service {
            return error(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                "unknown service",
                false,
            );
        }
    }
    let access = grants(state, req.user.as_deref(), &req.scopes);
    let scope = access::scope_string(
        &access
            .iter()
            .map(|c| Access {
                resource: access::Resource {
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                },
                actions: c
                    .actions
                    .iter()
                    .filter_map(|a| access::Action::parse(a))
                    .collect(),
            })
            .collect::<Vec<_>>(),
    );
    let token = match keys.issue(cfg, req.user.as_deref().unwrap_or(""), access) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a token");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "cannot issue a token",
                false,
            );
        }
    };
    let mut body = serde_json::json!({
        "access_token": token,
        "expires_in": cfg.expiry_secs,
        "issued_at": chrono_now(),
    });
    if req.oauth {
        body["scope"] = scope.into();
    } else {
        body["token"] = body["access_token"].clone();
    }
    if req.refresh {
        if let Some(user) = &req.user {
            let hash = state.users.hash(user).unwrap_or_default();
            match keys.issue_refresh(cfg, user, hash) {
                Ok(r) => body["refresh_token"] = r.into(),
                Err(e) => tracing::error!(error = %e, "cannot issue a refresh token"),
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// RFC 3339 UTC time of now.
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `GET /auth/token?service=…&scope=…[&offline_token=true]`, Basic credentials or none.
async fn get_token(State(auth): State<Arc<Auth>>, headers: HeaderMap, uri: Uri) -> Response {
    let state = auth.state();
    let q: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let user = match credentials(&headers) {
        None => None,
        Some(Credentials::Basic(u, p)) => {
            if !auth.check_password(&state, &u, &p).await {
                return unauthorized();
            }
            Some(u)
        }
        Some(_) => return unauthorized(),
    };
    let scopes = access::parse_scopes(
        q.iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    );
    issue(
        &state,
        Issue {
            user,
            scopes,
            service: get("service"),
            refresh: get("offline_token") == Some("true"),
            oauth: false,
        },
    )
}

/// `POST /auth/token` (form): `grant_type=password` with `username`/`password`, or
/// `grant_type=refresh_token` with `refresh_token`.
async fn post_token(State(auth): State<Arc<Auth>>, body: Bytes) -> Response {
    let state = auth.state();
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let scopes = access::parse_scopes(
        form.iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    );
    let offline = get("access_type") == Some("offline");
    let (user, refresh) = match get("grant_type") {
        Some("password") => {
            let (Some(u), Some(p)) = (get("username"), get("password")) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "UNSUPPORTED",
                    "username and password required",
                    false,
                );
            };
            if !auth.check_password(&state, u, p).await {
                return unauthorized();
            }
            (u.to_owned(), offline)
        }
        Some("refresh_token") => {
            let Some((cfg, keys)) = state.token() else {
                return unauthorized();
            };
            let claims = match get("refresh_token").map(|t| keys.verify_refresh(cfg, t)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::warn!(reason = %e, "refresh token refused");
                    return unauthorized();
                }
                None => return unauthorized(),
            };
            match state.users.hash(&claims.sub) {
                Some(h) if password_digest(h) == claims.pwh => {}
                _ => {
                    tracing::warn!(
                        user = claims.sub,
                        "refresh token of a changed or removed user refused"
                    );
                    return unauthorized();
                }
            }
            (claims.sub, false)
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                "grant_type must be password or refresh_token",
                false,
            )
        }
    };
    issue(
        &state,
        Issue {
            user: Some(user),
            scopes,
            service: get("service"),
            refresh,
            oauth: true,
        },
    )
}
