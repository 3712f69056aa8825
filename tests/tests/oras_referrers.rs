//! oras-py (the `oras` PyPI package, Python API only) against berth-registry: artifacts pushed
//! with a `subject` show up in the referrers API, with their artifact types and filters.
//!
//! oras-py 0.2.x `OrasClient.push(subject=…)` takes an `oras.oci.Subject(mediaType, digest,
//! size)` and writes it into the manifest; it sets no `artifactType`, so the registry reports the
//! config media type (spec fallback). An explicit `artifactType` is covered by a manifest pushed
//! over plain HTTP.
//!
//! The interpreter comes from `BERTH_ORAS_PYTHON` (default `target/oras-venv/bin/python`, relative
//! paths against the workspace root); create it with
//! `python3 -m venv target/oras-venv && target/oras-venv/bin/pip install oras`.

use std::path::PathBuf;
use std::process::Command;

use berth_tests::*;
use serde_json::{json, Value};

const SCRIPT: &str = r#"
import json, sys
import oras.client, oras.oci

host, repo, subject_digest, subject_size, outdir = sys.argv[1:6]
client = oras.client.OrasClient(hostname=host, insecure=True)
subject = oras.oci.Subject(
    mediaType="application/vnd.oci.image.manifest.v1+json",
    digest=subject_digest,
    size=int(subject_size),
)
result = {}
# Chunked blob upload (POST, PATCH with Content-Range, PUT), small chunks to force several.
r = client.push(
    target=f"{host}/{repo}:sbom",
    files=["sbom.json:application/vnd.berth.sbom.layer.v1+json", "notes.txt"],
    manifest_config="config.json:application/vnd.berth.sbom.v1+json",
    manifest_annotations={"org.example.kind": "sbom"},
    subject=subject,
    do_chunked=True,
    chunk_size=1000,
    quiet=True,
)
result["sbom"] = {"status": r.status_code, "digest": r.headers.get("Docker-Content-Digest"),
                  "subject": r.headers.get("OCI-Subject")}
# Monolithic upload (POST, PUT).
r = client.push(
    target=f"{host}/{repo}:sig",
    files=["sig.bin"],
    manifest_config="sigconfig.json:application/vnd.berth.signature.v1+json",
    subject=subject,
    quiet=True,
)
result["sig"] = {"status": r.status_code, "digest": r.headers.get("Docker-Content-Digest"),
                 "subject": r.headers.get("OCI-Subject")}
result["pulled"] = sorted(client.pull(target=f"{host}/{repo}:sbom", outdir=outdir))
print(json.dumps(result))
"#;

fn oras_python() -> PathBuf {
    let configured = std::env::var_os("BERTH_ORAS_PYTHON").map_or_else(
        || PathBuf::from("target/oras-venv/bin/python"),
        PathBuf::from,
    );
    let python = if configured.is_absolute() {
        configured
    } else {
        workspace_root().join(configured)
    };
    assert!(
        python.exists(),
        "oras-py interpreter {} is missing; create it with `cd {} && python3 -m venv target/oras-venv && target/oras-venv/bin/pip install oras` (or set BERTH_ORAS_PYTHON)",
        python.display(),
        workspace_root().display()
    );
    let check = Command::new(&python)
        .args(["-c", "import oras.client, oras.oci"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{} cannot import oras: {}; install it with `{} -m pip install oras`",
        python.display(),
        String::from_utf8_lossy(&check.stderr),
        python.display()
    );
    python
}

fn referrers(
    base: &str,
    repo: &str,
    subject: &str,
    filter: Option<&str>,
) -> (HttpResponse, Vec<Value>) {
    let query = filter
        .map(|f| format!("?artifactType={}", f.replace('+', "%2B")))
        .unwrap_or_default();
    let r = http(
        "GET",
        &format!("{base}/v2/{repo}/referrers/{subject}{query}"),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "referrers{query}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let index = r.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let list = index["manifests"].as_array().unwrap().clone();
    (r, list)
}

fn find<'a>(list: &'a [Value], digest: &str) -> &'a Value {
    list.iter()
        .find(|d| d["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} is not among the referrers {list:?}"))
}

#[test]
fn oras_push_with_subject_is_listed_in_referrers() {
    require("skopeo", "apt-get install skopeo");
    let python = oras_python();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), &["--delete"]);
    let base = reg.url();

    // The subject: an image pushed with skopeo.
    let (layout, m) = unique_busybox_image(&tmp.path().join("img"), 1, "v1");
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.dir.display()))
        .arg(format!("docker://{}/art/app:v1", reg.addr)));
    assert_eq!(
        get_manifest(&base, "art/app", "v1").header("docker-content-digest"),
        Some(m.digest.as_str())
    );
    let (_, before) = referrers(&base, "art/app", &m.digest, None);
    assert!(before.is_empty(), "no referrers yet: {before:?}");

    // The artifacts, pushed and pulled with oras-py.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let sbom = serde_json::to_vec(
        &json!({"packages": (0..300).map(|i| format!("pkg-{i}")).collect::<Vec<_>>()}),
    )
    .unwrap();
    std::fs::write(work.join("sbom.json"), &sbom).unwrap();
    std::fs::write(work.join("notes.txt"), "made by the berth oras test\n").unwrap();
    std::fs::write(work.join("config.json"), r#"{"tool":"berth-test"}"#).unwrap();
    std::fs::write(work.join("sig.bin"), noise(3000, 5)).unwrap();
    std::fs::write(work.join("sigconfig.json"), r#"{"signer":"berth-test"}"#).unwrap();
    let out_dir = tmp.path().join("pulled");
    std::fs::write(tmp.path().join("oras_push.py"), SCRIPT).unwrap();
    let out = run(Command::new(&python)
        .current_dir(&work)
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .arg(tmp.path().join("oras_push.py"))
        .args([&reg.addr, "art/app", &m.digest, &m.size.to_string()])
        .arg(&out_dir));
    let result: Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("oras script printed no JSON ({e}):\n{out}"));

    let mut digests = Vec::new();
    for name in ["sbom", "sig"] {
        let r = &result[name];
        assert_eq!(r["status"], 201, "oras push {name}: {result}");
        let digest = r["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("no digest for {name}: {result}"))
            .to_owned();
        assert_eq!(
            r["subject"],
            m.digest.as_str(),
            "OCI-Subject header on the {name} push"
        );
        let served = get_manifest(&base, "art/app", name);
        assert_eq!(
            served.header("docker-content-digest"),
            Some(digest.as_str())
        );
        let doc = served.json();
        assert_eq!(doc["subject"]["digest"], m.digest.as_str());
        assert_eq!(doc["subject"]["size"], m.size);
        digests.push(digest);
    }
    let patches = reg
        .log_text()
        .lines()
        .filter(|l| l.contains("PATCH /v2/art/app/blobs/uploads/") && l.contains(" 202 "))
        .count();
    assert!(
        patches >= 4,
        "oras chunked push should have sent several PATCHes, saw {patches}"
    );
    let pulled: Vec<String> = serde_json::from_value(result["pulled"].clone()).unwrap();
    assert_eq!(pulled.len(), 2, "oras pull returned {pulled:?}");
    assert_eq!(std::fs::read(out_dir.join("sbom.json")).unwrap(), sbom);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("notes.txt")).unwrap(),
        "made by the berth oras test\n"
    );

    // An artifact with an explicit artifactType and the empty config, over plain HTTP.
    let empty = push_blob(&base, "art/app", b"{}");
    let payload = push_blob(&base, "art/app", b"attestation payload");
    let attestation = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.berth.attestation.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.berth.attestation.payload", "digest": payload, "size": 19}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.digest, "size": m.size},
        "annotations": {"org.example.kind": "attestation"},
    }))
    .unwrap();
    let att_digest = sha256(&attestation);
    let r = http(
        "PUT",
        &format!("{base}/v2/art/app/manifests/{att_digest}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        Some(&attestation),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("oci-subject"), Some(m.digest.as_str()));

    // All three are listed with their artifact types and annotations.
    let (r, all) = referrers(&base, "art/app", &m.digest, None);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(r.header("oci-filters-applied"), None);
    let sbom_desc = find(&all, &digests[0]);
    assert_eq!(
        sbom_desc["artifactType"],
        "application/vnd.berth.sbom.v1+json"
    );
    assert_eq!(
        sbom_desc["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(sbom_desc["annotations"]["org.example.kind"], "sbom");
    let sbom_bytes = get_manifest(&base, "art/app", "sbom").body;
    assert_eq!(sbom_desc["size"], sbom_bytes.len());
    assert_eq!(
        find(&all, &digests[1])["artifactType"],
        "application/vnd.berth.signature.v1+json"
    );
    let att = find(&all, &att_digest);
    assert_eq!(att["artifactType"], "application/vnd.berth.attestation.v1");
    assert_eq!(att["annotations"]["org.example.kind"], "attestation");
    assert_eq!(att["size"], attestation.len());

    // Filters.
    for (filter, expected) in [
        ("application/vnd.berth.sbom.v1+json", &digests[0]),
        ("application/vnd.berth.signature.v1+json", &digests[1]),
        ("application/vnd.berth.attestation.v1", &att_digest),
    ] {
        let (r, list) = referrers(&base, "art/app", &m.digest, Some(filter));
        assert_eq!(
            r.header("oci-filters-applied"),
            Some("artifactType"),
            "filter {filter}"
        );
        let got: Vec<&str> = list.iter().map(|d| d["digest"].as_str().unwrap()).collect();
        assert_eq!(got, vec![expected.as_str()], "filter {filter}");
    }
    let (_, none) = referrers(
        &base,
        "art/app",
        &m.digest,
        Some("application/vnd.berth.nothing"),
    );
    assert!(none.is_empty());

    // Deleting a referrer removes it from the list.
    let r = http(
        "DELETE",
        &format!("{base}/v2/art/app/manifests/{}", digests[1]),
        &[],
        None,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let (_, after) = referrers(&base, "art/app", &m.digest, None);
    let got: std::collections::BTreeSet<&str> = after
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [digests[0].as_str(), att_digest.as_str()]
            .into_iter()
            .collect()
    );
}
