//! Garbage collection in process: exactly the unreferenced blobs go, index children and
//! referrers of kept manifests stay, the grace period and the dry run, and the interlock with
//! pushes that re-reference old unreferenced blobs while GC loops.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use berth_registry::gc::{self, GcOptions, GcReport};
use common::*;

fn opts(grace_secs: u64, dry_run: bool) -> GcOptions {
    GcOptions {
        dry_run,
        grace: Duration::from_secs(grace_secs),
        retention: true,
    }
}

async fn collect(h: &Harness, grace_secs: u64, dry_run: bool) -> GcReport {
    gc::run(h.registry.clone(), opts(grace_secs, dry_run))
        .await
        .expect("gc run")
}

fn swept(r: &GcReport) -> BTreeSet<String> {
    r.blobs.iter().map(|b| b.digest.clone()).collect()
}

fn blob_on_disk(h: &Harness, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").unwrap();
    h.tmp
        .path()
        .join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))
        .exists()
}

/// Pulls manifest, config and layers of `img` and compares them byte for byte.
async fn pulls_intact(h: &Harness, img: &Image) {
    let m = h
        .get(&format!("/v2/{}/manifests/{}", img.name, img.tag))
        .await;
    m.expect(StatusCode::OK);
    assert_eq!(m.body, img.manifest);
    let c = h
        .get(&format!("/v2/{}/blobs/{}", img.name, img.config_digest))
        .await;
    c.expect(StatusCode::OK);
    assert_eq!(c.body, img.config);
    for (d, l) in img.layer_digests.iter().zip(&img.layers) {
        let r = h.get(&format!("/v2/{}/blobs/{d}", img.name)).await;
        r.expect(StatusCode::OK);
        assert_eq!(&r.body[..], &l[..]);
    }
}

#[tokio::test]
async fn gc_reclaims_exactly_the_unreferenced_blobs() {
    let h = Harness::new();
    let shared = pseudo_random(5000, 1);
    let only_a = pseudo_random(3000, 2);
    let only_b = pseudo_random(3000, 3);
    // Tags differ so the configs (which name the tag) do too.
    let a = h.push_image("team/a", "a1", &[&shared, &only_a]).await;
    let b = h.push_image("team/b", "b1", &[&shared, &only_b]).await;
    // Nothing is unreferenced yet.
    assert!(swept(&collect(&h, 0, false).await).is_empty());
    h.delete(&format!("/v2/team/a/manifests/{}", a.digest))
        .await
        .expect(StatusCode::ACCEPTED);
    let dry = collect(&h, 0, true).await;
    let expected: BTreeSet<String> = [
        a.digest.clone(),
        a.config_digest.clone(),
        a.layer_digests[1].clone(),
    ]
    .into();
    assert_eq!(swept(&dry), expected, "dry run lists a's own blobs only");
    assert!(
        blob_on_disk(&h, &a.layer_digests[1]),
        "dry run deletes nothing"
    );
    let real = collect(&h, 0, false).await;
    assert_eq!(swept(&real), expected);
    assert_eq!(
        real.bytes_freed,
        (a.manifest.len() + a.config.len() + only_a.len()) as u64
    );
    assert_eq!(
        real.per_repository.get("team/a"),
        Some(&(3000 + a.config.len() as u64))
    );
    for d in &expected {
        assert!(!blob_on_disk(&h, d), "{d} should be gone");
    }
    assert!(
        blob_on_disk(&h, &a.layer_digests[0]),
        "the shared layer stays"
    );
    pulls_intact(&h, &b).await;
    // The deleted image's blobs are unknown now, also through the memory cache.
    h.head(&format!("/v2/team/a/blobs/{}", a.layer_digests[1]))
        .await
        .expect(StatusCode::NOT_FOUND);
    // A second run has nothing left to do.
    assert!(swept(&collect(&h, 0, false).await).is_empty());
}

#[tokio::test]
async fn gc_keeps_index_children_and_referrers_of_kept_manifests() {
    let h = Harness::new();
    // Two platform manifests reachable only through an index (pushed by digest, untagged).
    let amd = h
        .push_image("multi", "tmp-amd", &[&pseudo_random(2000, 10)])
        .await;
    let arm = h
        .push_image("multi", "tmp-arm", &[&pseudo_random(2000, 11)])
        .await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.digest, "size": amd.manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": arm.manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let index_digest = h.push_manifest("multi", "latest", OCI_INDEX, &index).await;
    // The children lose their own tags: only the index reaches them now.
    h.delete("/v2/multi/manifests/tmp-amd")
        .await
        .expect(StatusCode::ACCEPTED);
    h.delete("/v2/multi/manifests/tmp-arm")
        .await
        .expect(StatusCode::ACCEPTED);
    // A signature-like referrer of the index, with its own blob.
    let sig = b"signature bytes".to_vec();
    let sig_digest = h.push_blob("multi", &sig).await;
    h.push_blob("multi", b"{}").await;
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_SHA256, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig_digest, "size": sig.len()}],
        "subject": {"mediaType": OCI_INDEX, "digest": index_digest, "size": index.len()},
    }))
    .unwrap();
    let referrer_digest = sha256(&referrer);
    h.push_manifest("multi", &referrer_digest, OCI_MANIFEST, &referrer)
        .await;
    // An unrelated stray blob, which is the only thing to go.
    let stray = h.push_blob("multi", b"stray upload").await;
    let r = collect(&h, 0, false).await;
    assert_eq!(swept(&r), BTreeSet::from([stray]));
    for img in [&amd, &arm] {
        h.get(&format!("/v2/multi/manifests/{}", img.digest))
            .await
            .expect(StatusCode::OK);
        for d in &img.layer_digests {
            assert!(
                blob_on_disk(&h, d),
                "child layer {d} kept through the index"
            );
        }
    }
    assert!(blob_on_disk(&h, &sig_digest), "referrer's blob kept");
    let refs = h.get(&format!("/v2/multi/referrers/{index_digest}")).await;
    assert!(refs.text().contains(&referrer_digest));
}

#[tokio::test]
async fn gc_grace_period_keeps_fresh_uploads() {
    let h = Harness::new();
    let d = h.push_blob("fresh", b"uploaded moments ago").await;
    let r = collect(&h, 3600, false).await;
    assert!(swept(&r).is_empty());
    assert_eq!(r.blobs_young, 1);
    assert!(blob_on_disk(&h, &d));
    // Past the grace period (0 s) an unreferenced, unused blob goes, links first.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = collect(&h, 0, false).await;
    assert_eq!(swept(&r), BTreeSet::from([d.clone()]));
    assert_eq!(r.blobs[0].repositories, vec!["fresh".to_owned()]);
    assert!(!h
        .tmp
        .path()
        .join("repositories/fresh/_layers/sha256")
        .join(d.strip_prefix("sha256:").unwrap())
        .exists());
    h.head(&format!("/v2/fresh/blobs/{d}"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn gc_leftovers_of_a_crash_are_finished() {
    let h = Harness::new();
    let img = h
        .push_image("crash", "v1", &[&pseudo_random(1000, 5)])
        .await;
    let orphan = h.push_blob("crash", b"orphan content").await;
    // A sweep killed between deleting the links and the content leaves content without links.
    let hex = orphan.strip_prefix("sha256:").unwrap();
    std::fs::remove_dir_all(
        h.tmp
            .path()
            .join("repositories/crash/_layers/sha256")
            .join(hex),
    )
    .unwrap();
    // A blob directory whose content never arrived.
    std::fs::create_dir_all(
        h.tmp.path().join(
            "blobs/sha256/ab/ab00000000000000000000000000000000000000000000000000000000000000",
        ),
    )
    .unwrap();
    let r = collect(&h, 0, false).await;
    assert!(swept(&r).contains(&orphan));
    assert!(!blob_on_disk(&h, &orphan));
    assert!(!h
        .tmp
        .path()
        .join("blobs/sha256/ab/ab00000000000000000000000000000000000000000000000000000000000000")
        .exists());
    pulls_intact(&h, &img).await;
}

/// GC with a 1 s grace period runs in a loop while clients re-push images whose blobs are old
/// and unreferenced (the re-push race of distribution#3254): every manifest PUT that succeeds
/// must leave an image that pulls intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_in_a_loop_never_breaks_a_completed_push() {
    let h = std::sync::Arc::new(Harness::new());
    // Old unreferenced blobs: uploaded, never referenced, older than the grace period.
    let mut old = Vec::new();
    for i in 0..40u64 {
        let data = pseudo_random(600, 100 + i);
        let d = h.push_blob(&format!("race/r{}", i % 4), &data).await;
        old.push((i, data, d));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc_loop = {
        let (h, stop) = (h.clone(), stop.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                gc::run(h.registry.clone(), opts(1, false)).await.unwrap();
                runs += 1;
            }
            runs
        })
    };
    let mut pushers = Vec::new();
    for (i, data, d) in old {
        let h = h.clone();
        pushers.push(tokio::spawn(async move {
            let name = format!("race/r{}", i % 4);
            // As Docker: HEAD; upload when missing; then the manifest.
            let head = h.head(&format!("/v2/{name}/blobs/{d}")).await;
            if head.status == StatusCode::NOT_FOUND {
                h.push_blob(&name, &data).await;
            }
            let config = format!(r#"{{"n":{i}}}"#).into_bytes();
            let cd = h.push_blob(&name, &config).await;
            let manifest = oci_manifest(
                (OCI_CONFIG, &cd, config.len()),
                &[(OCI_LAYER, d.as_str(), data.len())],
            );
            let r = h
                .put_manifest(&name, &format!("t{i}"), OCI_MANIFEST, &manifest)
                .await;
            if r.status != StatusCode::CREATED {
                // The sweep won the race: the client is told, and re-uploads.
                assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
                h.push_blob(&name, &data).await;
                h.push_manifest(&name, &format!("t{i}"), OCI_MANIFEST, &manifest)
                    .await;
            }
            (name, i, data, d, config, cd)
        }));
    }
    let mut done = Vec::new();
    for p in pushers {
        done.push(p.await.unwrap());
    }
    // Two more runs after the last push, then everything must pull.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = gc_loop.await.unwrap();
    assert!(runs >= 2, "gc ran {runs} times");
    collect(&h, 1, false).await;
    for (name, i, data, d, config, cd) in done {
        h.get(&format!("/v2/{name}/manifests/t{i}"))
            .await
            .expect(StatusCode::OK);
        let b = h.get(&format!("/v2/{name}/blobs/{d}")).await;
        b.expect(StatusCode::OK);
        assert_eq!(&b.body[..], &data[..]);
        let c = h.get(&format!("/v2/{name}/blobs/{cd}")).await;
        c.expect(StatusCode::OK);
        assert_eq!(&c.body[..], &config[..]);
    }
}
