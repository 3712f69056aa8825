//! `remote::Client` authentication against the fake registry: Bearer tokens from a token
//! service on another host (service, scope and Basic credentials checked), token caching,
//! anonymous pulls, Basic auth, refused credentials, and mirrors never getting the upstream's
//! credentials.

mod remote_support;

use berth_client::remote::{Client, RemoteError};
use berth_client::Hint as _;
use remote_support::{options, AuthMode, Fake, SERVICE};

const MT: &str = "application/vnd.oci.image.manifest.v1+json";

fn bearer(anonymous_pull: bool) -> AuthMode {
    AuthMode::Bearer {
        user: "alice".into(),
        pass: "s3cret".into(),
        anonymous_pull,
    }
}

#[tokio::test]
async fn bearer_flow_sends_basic_to_the_realm_and_caches_the_token() {
    let fake = Fake::start(bearer(false)).await;
    let digest = fake.put_manifest("team/app", "v1", MT, br#"{"schemaVersion":2}"#);
    let opts = options("{}", &[(&fake.host(), "alice", "s3cret")]);
    let client = Client::connect(&fake.host(), &opts).await.unwrap();
    assert_eq!(
        client.base_url(),
        fake.url(),
        "loopback falls back to plain HTTP"
    );

    let m = client.manifest("team/app", "v1", &[MT]).await.unwrap();
    assert_eq!(m.digest.to_string(), digest);
    assert_eq!(m.media_type, MT);
    let again = client.manifest("team/app", &digest, &[]).await.unwrap();
    assert_eq!(again.bytes, m.bytes);

    let tokens = fake.token_log();
    assert_eq!(tokens.len(), 1, "one token for both pulls: {tokens:?}");
    let q = &tokens[0].path_and_query;
    assert!(q.contains(&format!("service={SERVICE}")), "{q}");
    assert!(q.contains("scope=repository%3Ateam%2Fapp%3Apull"), "{q}");
    assert!(tokens[0]
        .authorization
        .as_deref()
        .unwrap()
        .starts_with("Basic "));

    // The registry only ever saw the token, never the password.
    for r in fake.log() {
        if let Some(a) = &r.authorization {
            assert!(a.starts_with("Bearer tok|user|"), "{a}");
        }
    }
}

#[tokio::test]
async fn anonymous_pulls_get_anonymous_tokens() {
    let fake = Fake::start(bearer(true)).await;
    fake.put_manifest("pub/app", "v1", MT, b"{}");
    let client = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap();
    client.manifest("pub/app", "v1", &[MT]).await.unwrap();
    let tokens = fake.token_log();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].authorization.is_none());
}

#[tokio::test]
async fn pushes_ask_for_pull_push_and_catalog_for_its_own_scope() {
    let fake = Fake::start(bearer(false)).await;
    fake.put_manifest("team/app", "v1", MT, b"{}");
    let opts = options("{}", &[(&fake.host(), "alice", "s3cret")]);
    let client = Client::connect(&fake.host(), &opts).await.unwrap();
    client
        .put_manifest(
            "team/app",
            "v2",
            MT,
            bytes::Bytes::from_static(b"{\"a\":1}"),
        )
        .await
        .unwrap();
    assert_eq!(client.catalog().await.unwrap(), ["team/app"]);
    let scopes: Vec<String> = fake
        .token_log()
        .iter()
        .map(|l| l.path_and_query.clone())
        .collect();
    assert!(
        scopes[0].contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
        "{scopes:?}"
    );
    assert!(
        scopes[1].contains("scope=registry%3Acatalog%3A*")
            || scopes[1].contains("scope=registry%3Acatalog%3A%2A"),
        "{scopes:?}"
    );
}

#[tokio::test]
async fn wrong_password_is_unauthorized_with_a_hint() {
    let fake = Fake::start(bearer(false)).await;
    let client = Client::connect_as(&fake.host(), &options("{}", &[]), "alice", "nope")
        .await
        .unwrap();
    let e = client.ping().await.unwrap_err();
    match &e {
        RemoteError::Unauthorized {
            message,
            with_credentials,
            ..
        } => {
            assert!(
                message.contains("incorrect username or password"),
                "{message}"
            );
            assert!(with_credentials);
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(e
        .hint()
        .unwrap()
        .contains(&format!("berth login {}", fake.host())));
    // The right password works through the same path.
    let client = Client::connect_as(&fake.host(), &options("{}", &[]), "alice", "s3cret")
        .await
        .unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn no_credentials_for_a_private_registry_says_to_log_in() {
    let fake = Fake::start(bearer(false)).await;
    fake.put_manifest("team/app", "v1", MT, b"{}");
    let client = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap();
    let e = client.manifest("team/app", "v1", &[]).await.unwrap_err();
    assert!(
        matches!(
            e,
            RemoteError::Unauthorized {
                with_credentials: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.hint().unwrap().contains("run `berth login"),
        "{:?}",
        e.hint()
    );
}

#[tokio::test]
async fn basic_auth_registries_get_the_credentials_and_only_after_a_challenge() {
    let fake = Fake::start(AuthMode::Basic {
        user: "bob".into(),
        pass: "pw".into(),
    })
    .await;
    fake.put_manifest("x/y", "v1", MT, b"{}");
    let opts = options("{}", &[(&fake.host(), "bob", "pw")]);
    let client = Client::connect(&fake.host(), &opts).await.unwrap();
    client.manifest("x/y", "v1", &[]).await.unwrap();
    let log = fake.log();
    // The probe went without credentials; the manifest GET had them at once (challenge known).
    assert!(log[0].authorization.is_none());
    assert!(log
        .last()
        .unwrap()
        .authorization
        .as_deref()
        .unwrap()
        .starts_with("Basic "));

    let client = Client::connect_as(&fake.host(), &options("{}", &[]), "bob", "wrong")
        .await
        .unwrap();
    let e = client.ping().await.unwrap_err();
    assert!(matches!(e, RemoteError::Unauthorized { .. }), "{e:?}");
}

#[tokio::test]
async fn mirrors_never_get_the_upstreams_credentials() {
    let upstream = Fake::start(AuthMode::None).await;
    let mirror = Fake::start(AuthMode::Basic {
        user: "bob".into(),
        pass: "pw".into(),
    })
    .await;
    mirror.put_manifest("library/busybox", "latest", MT, b"{}");
    // Credentials exist for the upstream (and for Docker Hub) but not for the mirror.
    let opts = options(
        &format!(r#"{{"registry-mirrors": ["{}"]}}"#, mirror.url()),
        &[(&upstream.host(), "bob", "pw"), ("docker.io", "bob", "pw")],
    );
    let client = Client::mirror(&mirror.url(), &opts).await.unwrap();
    assert_eq!(client.base_url(), mirror.url());
    let e = client
        .manifest("library/busybox", "latest", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RemoteError::Unauthorized {
                with_credentials: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(mirror.log().iter().all(|r| r.authorization.is_none()));

    // With the mirror's own credentials stored, they are used.
    let opts = options("{}", &[(&mirror.host(), "bob", "pw")]);
    let client = Client::mirror(&mirror.url(), &opts).await.unwrap();
    client
        .manifest("library/busybox", "latest", &[])
        .await
        .unwrap();
}
