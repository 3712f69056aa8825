use std::process::Command;

use berth_tests::*;

#[test]
fn skopeo_copy_roundtrip_quick() {
    require("skopeo", "apt-get install skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &[]);
    let (layout, m) = busybox_image(&tmp.path().join("img"), 3, "v1");
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.dir.display()))
        .arg(format!("docker://{}/t/busybox:v1", reg.addr)));
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{}/t/busybox:v1", reg.addr)));
    assert_eq!(sha256(out.as_bytes()), m.digest);
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/t/busybox:v1", reg.addr))
        .arg(format!("oci:{}:v1", tmp.path().join("back").display())));
}
