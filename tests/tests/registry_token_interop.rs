//! berth-registry's built-in token server as the realm of another registry (issue 9): the CNCF
//! registry (Debian `docker-registry`, distribution 2.8) configured with `auth.token` pointing
//! at berth (`realm`, `service`, `issuer`, and berth's `token.crt` as `rootcertbundle`)
//! accepts the tokens berth issues — skopeo logs in through berth and pushes to and pulls from
//! distribution — and refuses clients without them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use berth_tests::*;

#[test]
fn the_cncf_registry_accepts_tokens_from_berth() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Users for berth's token server.
    let htpasswd = dir.join("htpasswd");
    let mut child = Command::new(bin("berth-registry"))
        .args(["user", "add", "alice", "--password-stdin", "--htpasswd"])
        .arg(&htpasswd)
        .env_remove("BERTH_REGISTRY_CONFIG")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "tokens-please").unwrap();
    assert!(child.wait().unwrap().success());
    let config = dir.join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[auth]\nhtpasswd = \"{}\"\n[auth.token]\nissuer = \"berth-test-issuer\"\nservice = \"cncf-test\"\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    let berth = Registry::start(&dir.join("berth"), &["--config", config.to_str().unwrap()]);
    // berth wrote its signing certificate when it started.
    let cert = berth.data_dir.join("auth/token.crt");
    assert!(cert.exists(), "no {}", cert.display());
    std::fs::create_dir_all(dir.join("cncf")).unwrap();
    let distribution = Distribution::start(
        &dir.join("cncf"),
        &format!(
            "auth:\n  token:\n    realm: {}/auth/token\n    service: cncf-test\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
            berth.url(),
            cert.display()
        ),
    );
    let (_layout, _) = unique_busybox_image(&dir.join("layout"), 1, "v1");
    let src = format!("oci:{}:v1", dir.join("layout").display());
    let dest = format!("docker://{}/team/app:v1", distribution.addr);
    let skopeo = |args: &[&str]| Command::new("skopeo").args(args).output().unwrap();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // Without credentials distribution sends clients to berth, whose anonymous token grants
    // nothing: distribution denies.
    let o = skopeo(&["copy", "-q", "--dest-tls-verify=false", &src, &dest]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("denied") || text(&o).contains("unauthorized"),
        "{}",
        text(&o)
    );
    let o = skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wrong",
        &src,
        &dest,
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    // With berth's user: a token from berth, accepted by distribution.
    let o = skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:tokens-please",
        &src,
        &dest,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:tokens-please",
        &dest,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("\"Digest\""), "{}", text(&o));
    // berth's own log shows the token requests, the password nowhere.
    let log = berth.log_text();
    assert!(log.contains("/auth/token"), "{log}");
    assert!(
        !log.contains("tokens-please"),
        "the password reached the log"
    );
}
