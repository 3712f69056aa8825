//! Authentication and access control, in process: the grant matrix (every endpoint family ×
//! anonymous, reader, writer, admin) with Basic and with Bearer tokens, the token server, and
//! the tokens that must be refused.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use berth_config::registry::{AccessRule, AuthConfig, TokenConfig};
use berth_registry::auth::htpasswd;
use common::{send_to, Harness, Image, Resp};

const USERS: [(&str, &str); 3] = [
    ("reader", "reader-pw"),
    ("writer", "writer-pw"),
    ("admin", "admin-pw"),
];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(repos: &[&str], users: &[&str], actions: &[&str]) -> AccessRule {
    AccessRule {
        repositories: strings(repos),
        users: strings(users),
        groups: Vec::new(),
        actions: strings(actions),
    }
}

/// An htpasswd file with the three users.
fn users_file(dir: &Path) -> PathBuf {
    let path = dir.join("htpasswd");
    for (u, p) in USERS {
        htpasswd::add_user(&path, u, p).unwrap();
    }
    path
}

/// reader: pull on team/**; writer: pull+push on team/**; admin: everything (catalog too).
fn auth_config(htpasswd: PathBuf, token: Option<TokenConfig>) -> AuthConfig {
    AuthConfig {
        htpasswd: Some(htpasswd),
        anonymous_pull: false,
        token,
        groups: [("writers".to_owned(), strings(&["writer"]))].into(),
        access: vec![
            rule(&["team/**"], &["reader"], &["pull"]),
            AccessRule {
                repositories: strings(&["team/**"]),
                users: Vec::new(),
                groups: strings(&["writers"]),
                actions: strings(&["pull", "push"]),
            },
            rule(&["**"], &["admin"], &["*"]),
        ],
    }
}

fn builtin_token() -> TokenConfig {
    TokenConfig {
        issuer: "berth-test".into(),
        service: "berth-test-svc".into(),
        expiry_secs: 300,
        key: None,
        cert: None,
        realm: None,
        root_certificates: None,
    }
}

/// A registry holding `team/app:v1` and `secret/app:v1`, then reopened with `auth`.
async fn setup(
    auth: impl FnOnce(&Path) -> AuthConfig,
) -> (Harness, Router, Image, tempfile::TempDir) {
    let h = Harness::new();
    let image = h.push_image("team/app", "v1", &[b"layer one"]).await;
    h.push_image("secret/app", "v1", &[b"secret layer"]).await;
    let files = tempfile::tempdir().unwrap();
    let cfg = auth(files.path());
    let router = h.reopen(|c| c.auth = Some(cfg));
    (h, router, image, files)
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

async fn call(router: &Router, method: Method, uri: &str, auth: Option<&str>) -> Resp {
    let mut b = Request::builder().method(method.clone()).uri(uri);
    b = b.header(header::HOST, "registry.test");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    let body = if matches!(method, Method::PUT | Method::PATCH | Method::POST) {
        b = b.header(header::CONTENT_LENGTH, 0);
        Body::empty()
    } else {
        Body::empty()
    };
    send_to(router, b.body(body).unwrap()).await
}

/// One row of the matrix: an endpoint family.
struct Family {
    name: &'static str,
    method: Method,
    uri: String,
    /// Which users may: r(eader), w(riter), a(dmin).
    allowed: &'static str,
}

fn families(image: &Image) -> Vec<Family> {
    let blob = &image.layer_digests[0];
    let f = |name, method, uri: String, allowed| Family {
        name,
        method,
        uri,
        allowed,
    };
    vec![
        f("base", Method::GET, "/v2/".into(), "rwa"),
        f("catalog", Method::GET, "/v2/_catalog".into(), "a"),
        f("tags", Method::GET, "/v2/team/app/tags/list".into(), "rwa"),
        f(
            "manifest get",
            Method::GET,
            "/v2/team/app/manifests/v1".into(),
            "rwa",
        ),
        f(
            "manifest head",
            Method::HEAD,
            "/v2/team/app/manifests/v1".into(),
            "rwa",
        ),
        f(
            "manifest put",
            Method::PUT,
            "/v2/team/app/manifests/v2".into(),
            "wa",
        ),
        f(
            "manifest delete",
            Method::DELETE,
            "/v2/team/app/manifests/v9".into(),
            "a",
        ),
        f(
            "blob get",
            Method::GET,
            format!("/v2/team/app/blobs/{blob}"),
            "rwa",
        ),
        f(
            "blob delete",
            Method::DELETE,
            format!("/v2/team/app/blobs/{blob}"),
            "a",
        ),
        f(
            "referrers",
            Method::GET,
            format!("/v2/team/app/referrers/{}", image.digest),
            "rwa",
        ),
        f(
            "upload start",
            Method::POST,
            "/v2/team/app/blobs/uploads/".into(),
            "wa",
        ),
        f(
            "upload patch",
            Method::PATCH,
            "/v2/team/app/blobs/uploads/nosuch".into(),
            "wa",
        ),
        f(
            "upload status",
            Method::GET,
            "/v2/team/app/blobs/uploads/nosuch".into(),
            "wa",
        ),
        f(
            "mount from readable",
            Method::POST,
            format!("/v2/team/app/blobs/uploads/?mount={blob}&from=team/other"),
            "wa",
        ),
        f(
            "mount from unreadable",
            Method::POST,
            format!("/v2/team/app/blobs/uploads/?mount={blob}&from=secret/app"),
            "a",
        ),
        f(
            "other repo pull",
            Method::GET,
            "/v2/secret/app/manifests/v1".into(),
            "a",
        ),
        f(
            "other repo push",
            Method::POST,
            "/v2/secret/app/blobs/uploads/".into(),
            "a",
        ),
    ]
}

fn is_auth_refusal(r: &Resp) -> bool {
    r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::FORBIDDEN
}

#[tokio::test]
async fn basic_grant_matrix() {
    let (_h, router, image, _files) = setup(|d| auth_config(users_file(d), None)).await;
    for fam in families(&image) {
        // Anonymous: 401 with the Basic challenge, everywhere.
        let r = call(&router, fam.method.clone(), &fam.uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anonymous {}", fam.name);
        assert_eq!(
            r.header("www-authenticate"),
            "Basic realm=\"berth-registry\""
        );
        if fam.method != Method::HEAD {
            assert_eq!(r.error_codes(), ["UNAUTHORIZED"], "{}", fam.name);
        }
        for (letter, (user, pw)) in ["r", "w", "a"].iter().zip(USERS) {
            let r = call(
                &router,
                fam.method.clone(),
                &fam.uri,
                Some(&basic(user, pw)),
            )
            .await;
            if fam.allowed.contains(letter) {
                assert!(
                    !is_auth_refusal(&r),
                    "{user} must reach {}: {r:?}",
                    fam.name
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{user} {}: {r:?}",
                    fam.name
                );
                if fam.method != Method::HEAD {
                    assert_eq!(r.error_codes(), ["DENIED"]);
                }
                assert!(r.header_opt("www-authenticate").is_none());
            }
        }
    }
    // A wrong password is a 401 with the challenge, whoever the user.
    let r = call(&router, Method::GET, "/v2/", Some(&basic("writer", "nope"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&router, Method::GET, "/v2/", Some(&basic("ghost", "x"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The token server is not there without [auth.token]; /auth/* needs no credentials.
    let r = call(&router, Method::GET, "/auth/token?service=x", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reader_reads_but_cannot_push_mount_delete_or_list() {
    let (_h, router, image, _files) = setup(|d| auth_config(users_file(d), None)).await;
    let reader = basic("reader", "reader-pw");
    let r = call(
        &router,
        Method::GET,
        "/v2/team/app/manifests/v1",
        Some(&reader),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), image.manifest.as_slice());
    let blob = &image.layer_digests[0];
    for (m, uri) in [
        (Method::POST, "/v2/team/app/blobs/uploads/".to_owned()),
        (Method::PUT, "/v2/team/app/manifests/v1".to_owned()),
        (Method::DELETE, "/v2/team/app/manifests/v1".to_owned()),
        (Method::DELETE, format!("/v2/team/app/blobs/{blob}")),
        (Method::GET, "/v2/_catalog".to_owned()),
        (
            Method::POST,
            format!("/v2/team/app/blobs/uploads/?mount={blob}&from=secret/app"),
        ),
    ] {
        let r = call(&router, m.clone(), &uri, Some(&reader)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "reader {m} {uri}");
    }
    // The writer may push but not mount from a repository it cannot read.
    let writer = basic("writer", "writer-pw");
    let r = call(
        &router,
        Method::POST,
        &format!("/v2/team/x/blobs/uploads/?mount={blob}&from=secret/app"),
        Some(&writer),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &router,
        Method::POST,
        &format!("/v2/team/x/blobs/uploads/?mount={blob}&from=team/app"),
        Some(&writer),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "mount from a readable repo: {r:?}"
    );
    // The admin deletes and lists.
    let admin = basic("admin", "admin-pw");
    let r = call(&router, Method::GET, "/v2/_catalog", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(
        &router,
        Method::DELETE,
        &format!("/v2/team/app/manifests/{}", image.digest),
        Some(&admin),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn anonymous_pull_reads_only() {
    let (_h, router, image, _files) = setup(|d| AuthConfig {
        anonymous_pull: true,
        ..auth_config(users_file(d), None)
    })
    .await;
    let r = call(&router, Method::GET, "/v2/team/app/manifests/v1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(
        &router,
        Method::GET,
        &format!("/v2/secret/app/blobs/{}", image.layer_digests[0]),
        None,
    )
    .await;
    assert_ne!(r.status, StatusCode::UNAUTHORIZED);
    for (m, uri) in [
        (Method::GET, "/v2/"),
        (Method::GET, "/v2/_catalog"),
        (Method::POST, "/v2/team/app/blobs/uploads/"),
        (Method::DELETE, "/v2/team/app/manifests/v1"),
    ] {
        let r = call(&router, m.clone(), uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anonymous {m} {uri}");
    }
}

#[tokio::test]
async fn no_rules_lets_every_user_do_everything() {
    let (_h, router, _image, _files) = setup(|d| AuthConfig {
        access: Vec::new(),
        ..auth_config(users_file(d), None)
    })
    .await;
    let reader = basic("reader", "reader-pw");
    for (m, uri) in [
        (Method::GET, "/v2/_catalog"),
        (Method::POST, "/v2/secret/app/blobs/uploads/"),
        (Method::DELETE, "/v2/secret/app/manifests/v1"),
    ] {
        let r = call(&router, m.clone(), uri, Some(&reader)).await;
        assert!(!is_auth_refusal(&r), "{m} {uri}: {r:?}");
    }
}

/// Asks the built-in token server for a token.
async fn token(router: &Router, auth: Option<&str>, scopes: &[&str]) -> Resp {
    let mut uri = "/auth/token?service=berth-test-svc".to_owned();
    for s in scopes {
        uri.push_str(&format!("&scope={}", common::enc(s)));
    }
    call(router, Method::GET, &uri, auth).await
}

fn bearer(resp: &Resp) -> String {
    assert_eq!(resp.status, StatusCode::OK, "{resp:?}");
    format!("Bearer {}", resp.json()["token"].as_str().unwrap())
}

#[tokio::test]
async fn token_grant_matrix() {
    let (_h, router, image, _files) =
        setup(|d| auth_config(users_file(d), Some(builtin_token()))).await;
    for fam in families(&image) {
        let r = call(&router, fam.method.clone(), &fam.uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anonymous {}", fam.name);
        let challenge = r.header("www-authenticate").to_owned();
        assert!(
            challenge.starts_with(
                "Bearer realm=\"http://registry.test/auth/token\",service=\"berth-test-svc\""
            ),
            "{challenge}"
        );
        // The scope asked for, as the client will pass it to the token server.
        let scopes: Vec<String> = challenge
            .split("scope=\"")
            .nth(1)
            .map(|s| {
                s.split('"')
                    .next()
                    .unwrap()
                    .split(' ')
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if fam.name != "base" {
            assert!(!scopes.is_empty(), "{}: {challenge}", fam.name);
        }
        for (letter, (user, pw)) in ["r", "w", "a"].iter().zip(USERS) {
            let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let t = bearer(&token(&router, Some(&basic(user, pw)), &scope_refs).await);
            let r = call(&router, fam.method.clone(), &fam.uri, Some(&t)).await;
            if fam.allowed.contains(letter) {
                assert!(
                    !is_auth_refusal(&r),
                    "{user} must reach {}: {r:?}",
                    fam.name
                );
            } else {
                // The CNCF registry's answer in the token flow: 401 insufficient_scope.
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user} {}", fam.name);
                assert!(
                    r.header("www-authenticate")
                        .contains("error=\"insufficient_scope\""),
                    "{user} {}: {r:?}",
                    fam.name
                );
            }
        }
    }
    // Anonymous tokens carry nothing without anonymous_pull; wrong passwords get no token.
    let t = bearer(&token(&router, None, &["repository:team/app:pull"]).await);
    let r = call(&router, Method::GET, "/v2/team/app/manifests/v1", Some(&t)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = token(
        &router,
        Some(&basic("reader", "bad")),
        &["repository:team/app:pull"],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A token for another repository does not open this one.
    let t = bearer(
        &token(
            &router,
            Some(&basic("admin", "admin-pw")),
            &["repository:team/other:pull"],
        )
        .await,
    );
    let r = call(&router, Method::GET, "/v2/team/app/manifests/v1", Some(&t)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Basic credentials are not accepted on the API in token mode.
    let r = call(
        &router,
        Method::GET,
        "/v2/team/app/manifests/v1",
        Some(&basic("admin", "admin-pw")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(iss: &str, aud: &str, exp: u64, repo: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": iss, "sub": "admin", "aud": aud, "exp": exp, "nbf": now() - 10, "iat": now() - 10,
        "jti": "x",
        "access": [{"type": "repository", "name": repo, "actions": ["pull"]}],
    })
}

fn sign(key_pem: &str, cert_der: &[u8], kid: Option<&str>, claims: &serde_json::Value) -> String {
    let kp = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    header.x5c = Some(vec![
        base64::engine::general_purpose::STANDARD.encode(cert_der)
    ]);
    let key = jsonwebtoken::EncodingKey::from_ec_der(&kp.serialize_der());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[tokio::test]
async fn refused_tokens() {
    let (h, router, _image, _files) =
        setup(|d| auth_config(users_file(d), Some(builtin_token()))).await;
    let key_pem = std::fs::read_to_string(h.tmp.path().join("auth/token.key")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(h.tmp.path().join("auth/token.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the generated key is private");
    let cert_pem = std::fs::read(h.tmp.path().join("auth/token.crt")).unwrap();
    let cert_der = rustls_pki_types::pem::PemObject::from_pem_slice(&cert_pem)
        .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
        .unwrap();
    let uri = "/v2/team/app/manifests/v1";
    let ok = |t: &str| format!("Bearer {t}");
    // A token we sign ourselves with the registry's key passes: the baseline.
    let good = sign(
        &key_pem,
        &cert_der,
        None,
        &claims("berth-test", "berth-test-svc", now() + 60, "team/app"),
    );
    assert_eq!(
        call(&router, Method::GET, uri, Some(&ok(&good)))
            .await
            .status,
        StatusCode::OK
    );
    let other_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let cases = [
        (
            "expired",
            sign(
                &key_pem,
                &cert_der,
                None,
                &claims("berth-test", "berth-test-svc", now() - 120, "team/app"),
            ),
        ),
        (
            "wrong signature",
            sign(
                &other_key,
                &cert_der,
                None,
                &claims("berth-test", "berth-test-svc", now() + 60, "team/app"),
            ),
        ),
        (
            "wrong audience",
            sign(
                &key_pem,
                &cert_der,
                None,
                &claims("berth-test", "other-svc", now() + 60, "team/app"),
            ),
        ),
        (
            "wrong issuer",
            sign(
                &key_pem,
                &cert_der,
                None,
                &claims("evil", "berth-test-svc", now() + 60, "team/app"),
            ),
        ),
        (
            "other repository",
            sign(
                &key_pem,
                &cert_der,
                None,
                &claims("berth-test", "berth-test-svc", now() + 60, "team/other"),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64url(br#"{"alg":"none","typ":"JWT"}"#),
                b64url(
                    claims("berth-test", "berth-test-svc", now() + 60, "team/app")
                        .to_string()
                        .as_bytes()
                )
            ),
        ),
        ("tampered payload", {
            let parts: Vec<&str> = good.split('.').collect();
            let evil = claims("berth-test", "berth-test-svc", now() + 60, "secret/app");
            format!(
                "{}.{}.{}",
                parts[0],
                b64url(evil.to_string().as_bytes()),
                parts[2]
            )
        }),
        ("HS256 with the public key", {
            let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            let key = jsonwebtoken::EncodingKey::from_secret(&cert_der);
            jsonwebtoken::encode(
                &header,
                &claims("berth-test", "berth-test-svc", now() + 60, "team/app"),
                &key,
            )
            .unwrap()
        }),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, t) in cases {
        let r = call(&router, Method::GET, uri, Some(&ok(&t))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {r:?}");
        assert!(
            r.header("www-authenticate").starts_with("Bearer "),
            "{name}"
        );
    }
}

#[tokio::test]
async fn external_issuer_tokens_accepted() {
    // An external token server: its key and self-signed certificate, trusted as the root.
    let ext_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ext_cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&ext_key)
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let root = files.path().join("ext.pem");
    std::fs::write(&root, ext_cert.pem()).unwrap();
    let (_h, router, _image, _f) = setup(|_| AuthConfig {
        htpasswd: None,
        anonymous_pull: false,
        token: Some(TokenConfig {
            issuer: "ext-issuer".into(),
            service: "ext-svc".into(),
            expiry_secs: 300,
            key: None,
            cert: None,
            realm: Some("https://auth.example/token".into()),
            root_certificates: Some(root.clone()),
        }),
        groups: Default::default(),
        access: Vec::new(),
    })
    .await;
    let uri = "/v2/team/app/manifests/v1";
    let r = call(&router, Method::GET, uri, None).await;
    assert_eq!(
        r.header("www-authenticate"),
        "Bearer realm=\"https://auth.example/token\",service=\"ext-svc\",scope=\"repository:team/app:pull\""
    );
    let pem = ext_key.serialize_pem();
    let c = claims("ext-issuer", "ext-svc", now() + 60, "team/app");
    // With x5c, with no kid, and with a libtrust-style kid the registry does not know.
    for kid in [None, Some("ABCD:EFGH")] {
        let t = sign(&pem, ext_cert.der(), kid, &c);
        let r = call(&router, Method::GET, uri, Some(&format!("Bearer {t}"))).await;
        assert_eq!(r.status, StatusCode::OK, "kid {kid:?}: {r:?}");
    }
    // The external server's key signing for another issuer, or an unknown key: refused.
    let t = sign(
        &pem,
        ext_cert.der(),
        None,
        &claims("other", "ext-svc", now() + 60, "team/app"),
    );
    assert_eq!(
        call(&router, Method::GET, uri, Some(&format!("Bearer {t}")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let stranger_cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&stranger)
        .unwrap();
    let t = sign(&stranger.serialize_pem(), stranger_cert.der(), None, &c);
    assert_eq!(
        call(&router, Method::GET, uri, Some(&format!("Bearer {t}")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // No token server here.
    assert_eq!(
        call(&router, Method::GET, "/auth/token?service=ext-svc", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn post_form(router: &Router, form: &str) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/auth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, form.len())
        .body(Body::from(form.to_owned()))
        .unwrap();
    send_to(router, req).await
}

#[tokio::test]
async fn oauth_password_and_refresh_grants() {
    let (_h, router, _image, files) =
        setup(|d| auth_config(users_file(d), Some(builtin_token()))).await;
    // `docker login`: GET with offline_token=true returns a refresh token.
    let r = call(
        &router,
        Method::GET,
        "/auth/token?account=writer&client_id=docker&offline_token=true&service=berth-test-svc",
        Some(&basic("writer", "writer-pw")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert!(r.json()["expires_in"].as_u64().unwrap() == 300);
    // Then the OAuth2 refresh grant, as Docker does with the stored identity token.
    let r = post_form(
        &router,
        &format!(
            "grant_type=refresh_token&service=berth-test-svc&client_id=docker&scope={}&refresh_token={refresh}",
            common::enc("repository:team/app:pull,push")
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["scope"], "repository:team/app:pull,push");
    let t = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let r = call(
        &router,
        Method::POST,
        "/v2/team/app/blobs/uploads/",
        Some(&t),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // The password grant, with access_type=offline.
    let r = post_form(&router, "grant_type=password&username=reader&password=reader-pw&service=berth-test-svc&client_id=x&access_type=offline&scope=repository%3Ateam%2Fapp%3Apull%2Cpush").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["scope"], "repository:team/app:pull");
    assert!(r.json()["refresh_token"].is_string());
    let r = post_form(
        &router,
        "grant_type=password&username=reader&password=wrong&service=berth-test-svc&client_id=x",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A refresh token that is not one, or an access token passed as one: refused.
    let r = post_form(
        &router,
        "grant_type=refresh_token&service=berth-test-svc&client_id=x&refresh_token=abc",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The user's password changes: the refresh token ends (after the reload).
    htpasswd::add_user(&files.path().join("htpasswd"), "writer", "new-pw").unwrap();
    let (_, auth, router2) = berth_registry::app_with_auth(berth_registry::RegistryConfig {
        data_dir: _h.tmp.path().into(),
        auth: Some(auth_config(
            files.path().join("htpasswd"),
            Some(builtin_token()),
        )),
        ..Default::default()
    })
    .unwrap();
    assert!(auth.is_some());
    let r = post_form(&router2, &format!("grant_type=refresh_token&service=berth-test-svc&client_id=docker&refresh_token={refresh}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let (_h, router, _image, _files) =
        setup(|d| auth_config(users_file(d), Some(builtin_token()))).await;
    let r = call(&router, Method::GET, "/auth/jwks.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let jwks = r.json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    let t = token(
        &router,
        Some(&basic("admin", "admin-pw")),
        &["repository:team/app:pull"],
    )
    .await;
    let jwt = t.json()["token"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    assert_eq!(header.x5c.unwrap()[0], key["x5c"][0].as_str().unwrap());
}

/// Basic requests pay bcrypt once; later ones hit the HMAC-keyed cache.
#[tokio::test]
async fn basic_credentials_are_cached() {
    let (_h, router, _image, _files) = setup(|d| auth_config(users_file(d), None)).await;
    let a = basic("reader", "reader-pw");
    let t = Instant::now();
    assert_eq!(
        call(&router, Method::GET, "/v2/", Some(&a)).await.status,
        StatusCode::OK
    );
    let first = t.elapsed();
    let mut later = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(
            call(&router, Method::GET, "/v2/", Some(&a)).await.status,
            StatusCode::OK
        );
        later.push(t.elapsed());
    }
    later.sort();
    let median = later[later.len() / 2];
    assert!(
        median < Duration::from_millis(5),
        "cached check took {median:?}"
    );
    assert!(first > median * 5, "first {first:?} vs cached {median:?}");
}
