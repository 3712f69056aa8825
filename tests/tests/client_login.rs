//! `berth login`, `logout` and `search` against CNCF distribution (`docker-registry`) with
//! htpasswd (Basic) authentication. Every invocation gets its own data root, berth config
//! directory, `HOME` and `DOCKER_CONFIG`, so nothing of the real user is read or written.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_tests::*;

/// base64("user:pass")
const USER_PASS_B64: &str = "dXNlcjpwYXNz";

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        for d in ["data", "berth-config", "home", "docker-config"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("daemon.json"), "{}").unwrap();
        Self { _tmp: tmp, root }
    }

    fn config_file(&self) -> PathBuf {
        self.root.join("berth-config/config.json")
    }

    fn berth(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(bin("berth"));
        cmd.arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--config-file")
            .arg(self.root.join("daemon.json"))
            .args(args)
            .env("BERTH_CONFIG_DIR", self.root.join("berth-config"))
            .env("HOME", self.root.join("home"))
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .env("BERTH_NO_PROGRESS", "1")
            .env_remove("BERTH_DATA_ROOT")
            .env_remove("BERTH_CONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn berth");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A distribution registry requiring `user`/`pass` (htpasswd, bcrypt).
fn private_registry(dir: &Path) -> Distribution {
    require(
        "htpasswd",
        "install it with `apt-get install apache2-utils`",
    );
    let file = dir.join("htpasswd");
    let line = run(Command::new("htpasswd").args(["-Bbn", "user", "pass"]));
    std::fs::write(&file, line).unwrap();
    Distribution::start(
        dir,
        &format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            file.display()
        ),
    )
}

fn auths(env: &Env) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.config_file()).unwrap()).unwrap();
    doc["auths"].clone()
}

#[test]
fn login_stores_credentials_only_when_the_registry_accepts_them_and_logout_removes_them() {
    let env = Env::new();
    let reg = private_registry(&env.root);

    let bad = env.berth(
        &["login", &reg.addr, "-u", "user", "--password-stdin"],
        Some("wrong\n"),
    );
    assert_eq!(bad.status.code(), Some(1), "stderr: {}", text(&bad.stderr));
    let err = text(&bad.stderr);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(err.contains(&format!("berth login {}", reg.addr)), "{err}");
    assert!(!text(&bad.stdout).contains("Login Succeeded"));
    assert!(
        !env.config_file().exists() || auths(&env).get(&reg.addr).is_none(),
        "refused credentials were stored"
    );

    // No username and no terminal: say how to do it non-interactively.
    let no_tty = env.berth(&["login", &reg.addr], None);
    assert_eq!(no_tty.status.code(), Some(1));
    assert!(
        text(&no_tty.stderr).contains("--password-stdin"),
        "{}",
        text(&no_tty.stderr)
    );

    let ok = env.berth(
        &["login", &reg.addr, "-u", "user", "--password-stdin"],
        Some("pass\n"),
    );
    assert!(ok.status.success(), "stderr: {}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "Login Succeeded\n");
    assert_eq!(auths(&env)[&reg.addr]["auth"], USER_PASS_B64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.config_file()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Nothing was written for Docker or in the fake home.
    assert!(!env.root.join("docker-config/config.json").exists());
    assert!(!env.root.join("home/.berth").exists());

    // Logging in again without flags uses the stored credentials.
    let again = env.berth(&["login", &reg.addr], None);
    assert!(again.status.success(), "stderr: {}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "Login Succeeded\n");

    let out = env.berth(&["logout", &reg.addr], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    assert!(auths(&env).get(&reg.addr).is_none());

    let out = env.berth(&["logout", &reg.addr], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("Not logged in to {}\n", reg.addr)
    );
}

#[test]
fn search_lists_the_registrys_matching_repositories() {
    require("skopeo", "install it with `apt-get install skopeo`");
    let env = Env::new();
    let reg = private_registry(&env.root);
    let (layout, _) = busybox_image(&env.root.join("img"), 1, "v1");
    for repo in ["t/busybox", "t/busybox-extra", "other/thing"] {
        run(Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "user:pass",
            ])
            .arg(format!("oci:{}:v1", layout.dir.display()))
            .arg(format!("docker://{}/{repo}:v1", reg.addr)));
    }

    // Not logged in: the catalog needs credentials.
    let denied = env.berth(&["search", &format!("{}/busy", reg.addr)], None);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains(&format!("berth login {}", reg.addr)),
        "{}",
        text(&denied.stderr)
    );

    let login = env.berth(
        &["login", &reg.addr, "-u", "user", "--password-stdin"],
        Some("pass"),
    );
    assert!(login.status.success(), "stderr: {}", text(&login.stderr));

    let out = env.berth(&["search", &format!("{}/busy", reg.addr)], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DESCRIPTION"),
        "{stdout}"
    );
    assert!(
        lines[0].contains("STARS") && lines[0].contains("OFFICIAL"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[1].starts_with(&format!("{}/t/busybox ", reg.addr)),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!("{}/t/busybox-extra ", reg.addr)),
        "{stdout}"
    );

    let out = env.berth(
        &[
            "search",
            "--format",
            "{{.Name}}",
            "--limit",
            "1",
            &format!("{}/", reg.addr),
        ],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}/other/thing\n", reg.addr));
}
