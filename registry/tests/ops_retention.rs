//! `[[retention]]` in process: keep-last-N, keep-within, keep_tags globs, untagged manifests
//! after a period; the dry run lists exactly what the real run removes, and GC then frees the
//! removed images' own layers.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use berth_config::registry_ops::RetentionRule;
use berth_registry::gc::{self, GcOptions, GcReport};
use common::*;

fn set_age(h: &Harness, rel: &str, age_secs: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(h.tmp.path().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    f.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
        .unwrap();
}

fn tag_age(h: &Harness, repo: &str, tag: &str, age_secs: u64) {
    set_age(
        h,
        &format!("repositories/{repo}/_manifests/tags/{tag}/current/link"),
        age_secs,
    );
}

async fn run(h: &Harness, dry_run: bool) -> GcReport {
    gc::run(
        h.registry.clone(),
        GcOptions {
            dry_run,
            grace: Duration::ZERO,
            retention: true,
        },
    )
    .await
    .unwrap()
}

fn summary(r: &GcReport) -> (Vec<(String, String)>, Vec<String>, BTreeSet<String>) {
    (
        r.retention
            .tags
            .iter()
            .map(|t| (t.repository.clone(), t.tag.clone()))
            .collect(),
        r.retention
            .manifests
            .iter()
            .map(|m| m.digest.clone())
            .collect(),
        r.blobs.iter().map(|b| b.digest.clone()).collect(),
    )
}

async fn tags(h: &Harness, repo: &str) -> Vec<String> {
    let r = h.get(&format!("/v2/{repo}/tags/list")).await;
    r.expect(StatusCode::OK);
    r.json()["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn retention_keep_last_and_keep_within_remove_the_right_tags_and_dry_run_matches() {
    let h = Harness::with(|c| {
        c.ops.retention = vec![
            RetentionRule {
                repositories: vec!["last/*".into()],
                keep_last: Some(2),
                keep_tags: vec!["release-*".into()],
                ..RetentionRule::default()
            },
            RetentionRule {
                repositories: vec!["within/**".into()],
                keep_within_secs: Some(600),
                ..RetentionRule::default()
            },
        ];
    });
    let mut imgs = Vec::new();
    // Pushed 4000, 3000, 2000, 1000 s ago; `release-1` is the oldest but matches keep_tags.
    for (i, tag) in ["a", "b", "c", "d", "release-1"].iter().enumerate() {
        let img = h
            .push_image("last/app", tag, &[&pseudo_random(1500, i as u64 + 1)])
            .await;
        let age = if *tag == "release-1" {
            9000
        } else {
            4000 - 1000 * i as u64
        };
        tag_age(&h, "last/app", tag, age);
        imgs.push(img);
    }
    // A tag that is old by push but was pulled recently counts as recent.
    let old = h
        .push_image("within/x/app", "old", &[&pseudo_random(900, 20)])
        .await;
    let pulled = h
        .push_image("within/x/app", "pulled", &[&pseudo_random(900, 21)])
        .await;
    let new = h
        .push_image("within/x/app", "new", &[&pseudo_random(900, 22)])
        .await;
    tag_age(&h, "within/x/app", "old", 5000);
    tag_age(&h, "within/x/app", "pulled", 5000);
    h.get("/v2/within/x/app/manifests/pulled")
        .await
        .expect(StatusCode::OK);
    // Outside every rule: never touched.
    let other = h
        .push_image("other/app", "ancient", &[&pseudo_random(900, 30)])
        .await;
    tag_age(&h, "other/app", "ancient", 90_000);

    let dry = run(&h, true).await;
    let (dry_tags, dry_manifests, dry_blobs) = summary(&dry);
    assert_eq!(
        dry_tags,
        vec![
            ("last/app".to_owned(), "a".to_owned()),
            ("last/app".to_owned(), "b".to_owned()),
            ("within/x/app".to_owned(), "old".to_owned()),
        ]
    );
    let mut want_manifests = vec![
        imgs[0].digest.clone(),
        imgs[1].digest.clone(),
        old.digest.clone(),
    ];
    want_manifests.sort();
    let mut got = dry_manifests.clone();
    got.sort();
    assert_eq!(
        got, want_manifests,
        "the removed tags' manifests go with them"
    );
    let want_blobs: BTreeSet<String> = [&imgs[0], &imgs[1], &old]
        .iter()
        .flat_map(|i| {
            [i.digest.clone(), i.config_digest.clone()]
                .into_iter()
                .chain(i.layer_digests.iter().cloned())
        })
        .collect();
    assert_eq!(
        dry_blobs, want_blobs,
        "the dry run lists what GC then frees"
    );
    // Nothing changed yet.
    assert_eq!(tags(&h, "last/app").await.len(), 5);

    let real = run(&h, false).await;
    assert_eq!(
        summary(&real),
        (dry_tags, dry_manifests, dry_blobs),
        "dry run == real run"
    );
    assert_eq!(tags(&h, "last/app").await, vec!["c", "d", "release-1"]);
    assert_eq!(tags(&h, "within/x/app").await, vec!["new", "pulled"]);
    assert_eq!(tags(&h, "other/app").await, vec!["ancient"]);
    for img in [&imgs[2], &imgs[3], &imgs[4], &pulled, &new, &other] {
        h.get(&format!("/v2/{}/manifests/{}", img.name, img.tag))
            .await
            .expect(StatusCode::OK);
        for d in &img.layer_digests {
            h.get(&format!("/v2/{}/blobs/{d}", img.name))
                .await
                .expect(StatusCode::OK);
        }
    }
    // Idempotent.
    let again = run(&h, false).await;
    assert!(
        again.retention.tags.is_empty() && again.blobs.is_empty(),
        "{:?}",
        summary(&again)
    );
}

#[tokio::test]
async fn retention_untagged_after_keeps_referrers_of_kept_manifests() {
    let h = Harness::with(|c| {
        c.ops.retention = vec![RetentionRule {
            repositories: vec!["**".into()],
            untagged_after_secs: Some(3600),
            ..RetentionRule::default()
        }];
    });
    let kept = h.push_image("u/app", "v1", &[&pseudo_random(700, 1)]).await;
    let orphan = h
        .push_image("u/app", "gone", &[&pseudo_random(700, 2)])
        .await;
    h.delete("/v2/u/app/manifests/gone")
        .await
        .expect(StatusCode::ACCEPTED);
    let young = h
        .push_image("u/app", "young", &[&pseudo_random(700, 3)])
        .await;
    h.delete("/v2/u/app/manifests/young")
        .await
        .expect(StatusCode::ACCEPTED);
    // A referrer of the kept image: untagged by nature, must stay.
    h.push_blob("u/app", b"{}").await;
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_SHA256, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": kept.digest, "size": kept.manifest.len()},
    }))
    .unwrap();
    let rd = sha256(&referrer);
    h.push_manifest("u/app", &rd, OCI_MANIFEST, &referrer).await;
    for d in [&orphan.digest, &rd] {
        set_age(
            &h,
            &format!(
                "repositories/u/app/_manifests/revisions/sha256/{}/link",
                d.strip_prefix("sha256:").unwrap()
            ),
            7200,
        );
    }
    let r = run(&h, false).await;
    assert!(r.retention.tags.is_empty());
    let removed: Vec<String> = r
        .retention
        .manifests
        .iter()
        .map(|m| m.digest.clone())
        .collect();
    assert_eq!(removed, vec![orphan.digest.clone()]);
    h.get(&format!("/v2/u/app/manifests/{rd}"))
        .await
        .expect(StatusCode::OK);
    h.get(&format!("/v2/u/app/manifests/{}", young.digest))
        .await
        .expect(StatusCode::OK);
    h.get(&format!("/v2/u/app/manifests/{}", orphan.digest))
        .await
        .expect(StatusCode::NOT_FOUND);
}
