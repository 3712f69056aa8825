//! The local image commands as Docker users drive them: `images` filters and formats, `rmi`
//! conflicts and `-f`, `history`, `image prune`, `system df`, `pull --all-tags` and
//! `--platform` selection from an index.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_tests::*;

struct Berth {
    root: PathBuf,
    home: PathBuf,
}

impl Berth {
    fn new(dir: &Path) -> Self {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Self {
            root: dir.join("berth-root"),
            home,
        }
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(bin("berth"))
            .arg("--data-root")
            .arg(&self.root)
            .args(args)
            .env_remove("BERTH_CONFIG")
            .env_remove("BERTH_DATA_ROOT")
            .env("HOME", &self.home)
            .env("BERTH_CONFIG_DIR", self.home.join(".berth"))
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("BERTH_NO_PROGRESS", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run berth");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "berth {args:?}: {err}");
        out
    }
}

fn push_layout(layout: &Layout, tag: &str, target: &str, all: bool) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "-q", "--dest-tls-verify=false"]);
    if all {
        c.arg("--all");
    }
    run(c
        .arg(format!("oci:{}:{tag}", layout.dir.display()))
        .arg(format!("docker://{target}")));
}

#[test]
fn images_filters_rmi_history_prune_and_df() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let (layout, _) = busybox_image(&tmp.path().join("l1"), 2, "v1");
    push_layout(&layout, "v1", &format!("{}/team/app:v1", reg.addr), false);
    push_layout(&layout, "v1", &format!("{}/team/app:v2", reg.addr), false);
    let (other, _) = busybox_image(&tmp.path().join("l2"), 4, "x");
    push_layout(&other, "x", &format!("{}/other/tool:x", reg.addr), false);

    let b = Berth::new(tmp.path());
    let app = format!("{}/team/app", reg.addr);
    // --all-tags pulls v1 and v2 (one image, two tags).
    b.ok(&["pull", "-a", "-q", &app]);
    b.ok(&["pull", "-q", &format!("{}/other/tool:x", reg.addr)]);
    let out = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    let mut expected = vec![
        format!("{app}:v1"),
        format!("{app}:v2"),
        format!("{}/other/tool:x", reg.addr),
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);
    let ids = b.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 2, "two distinct images: {ids}");
    assert!(ids.lines().all(|l| l.len() == 12), "{ids}");
    let full = b.ok(&["images", "-q", "--no-trunc"]);
    assert!(
        full.lines()
            .all(|l| l.starts_with("sha256:") && l.len() == 71),
        "{full}"
    );
    let filtered = b.ok(&[
        "images",
        "--filter",
        "reference=*/team/*",
        "--format",
        "{{.Tag}}",
    ]);
    let mut tags: Vec<&str> = filtered.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["v1", "v2"]);
    let by_repo = b.ok(&["images", &format!("{app}:v2"), "--format", "{{.Tag}}"]);
    assert_eq!(by_repo.trim(), "v2");
    let (code, _, err) = b.run(&["images", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter"), "{err}");

    // history: newest first, image ID on top, one row per layer.
    let hist = b.ok(&["history", &format!("{app}:v1")]);
    let lines: Vec<&str> = hist.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{hist}"
    );
    assert_eq!(lines.len(), 1 + 3, "{hist}");
    assert!(lines[2].starts_with("<missing>"), "{hist}");

    // rmi by ID with two tags needs -f.
    let id = b
        .ok(&["images", "-q", &format!("{app}:v1")])
        .trim()
        .to_owned();
    let (code, _, err) = b.run(&["rmi", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("must be forced"), "{err}");
    let out = b.ok(&["rmi", "-f", &id]);
    assert!(out.matches("Untagged:").count() >= 2, "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");

    // system df counts what is left; prune -a -f removes it.
    let df = b.ok(&["system", "df"]);
    assert!(df.lines().next().unwrap().starts_with("TYPE"), "{df}");
    assert!(
        df.lines()
            .any(|l| l.starts_with("Images") && l.split_whitespace().nth(1) == Some("1")),
        "{df}"
    );
    let pruned = b.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        pruned.contains("Deleted Images:") && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    assert!(b.ok(&["images", "-a", "-q"]).trim().is_empty());
    assert_eq!(
        std::fs::read_dir(b.root.join("layers/sha256"))
            .unwrap()
            .count(),
        0,
        "layers reclaimed"
    );
    let (code, _, err) = b.run(&["image", "prune"]);
    assert_eq!(code, 1, "prune without -f and without a terminal refuses");
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn platform_is_chosen_from_an_index() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let mut layout = Layout::new(&tmp.path().join("multi"));
    let (l, d) = busybox_layer();
    let amd = layout.add_image(
        std::slice::from_ref(&l),
        std::slice::from_ref(&d),
        "amd64",
        None,
    );
    let (l2, d2) = layer(&[("etc/arch", b"arm64\n", 0o644)]);
    let arm = layout.add_image(&[l, l2], &[d, d2], "arm64", None);
    let index = layout.wrap_in_index("multi");
    push_layout(
        &layout,
        "multi",
        &format!("{}/multi/arch:v1", reg.addr),
        true,
    );
    let image = format!("{}/multi/arch:v1", reg.addr);

    let b = Berth::new(&tmp.path().join("amd"));
    let (code, _, err) = b.run(&["pull", &image]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("Digest: {}", index.digest)),
        "the index digest is reported: {err}"
    );
    let desc = b.ok(&[
        "inspect",
        "--format",
        "{{.Architecture}} {{.Descriptor.digest}}",
        &image,
    ]);
    assert_eq!(desc.trim(), format!("amd64 {}", amd.digest));

    let b = Berth::new(&tmp.path().join("arm"));
    b.ok(&["pull", "--platform", "linux/arm64", &image]);
    let desc = b.ok(&[
        "inspect",
        "--format",
        "{{.Architecture}} {{.Descriptor.digest}}",
        &image,
    ]);
    assert_eq!(desc.trim(), format!("arm64 {}", arm.digest));

    let b = Berth::new(&tmp.path().join("none"));
    let (code, _, err) = b.run(&["pull", "--platform", "linux/s390x", &image]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}
