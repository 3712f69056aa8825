//! Crash safety: `kill -9` the registry while many uploads are in flight, restart it on the same
//! data directory, and check that nothing acknowledged was lost, nothing half-written became
//! visible, and interrupted sessions can be resumed or are cleanly gone.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_tests::*;

const REPO: &str = "crash/uploads";
const MIB: usize = 1024 * 1024;
const JOBS: usize = 24;

/// A request body that trickles out `piece` bytes at a time with a pause before each piece, so
/// uploads are still in flight when the registry is killed.
struct SlowReader {
    data: Arc<Vec<u8>>,
    pos: usize,
    end: usize,
    piece: usize,
    delay: Duration,
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        // Pause once per piece, however small the caller's buffer is.
        let into_piece = self.pos % self.piece;
        if into_piece == 0 {
            std::thread::sleep(self.delay);
        }
        let n = buf
            .len()
            .min(self.piece - into_piece)
            .min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `POST ?digest=` with the whole body.
    Monolithic,
    /// `POST`, `PATCH` 1 MiB chunks with `Content-Range`, `PUT ?digest=`.
    Chunked,
    /// `POST`, one `PATCH` without `Content-Range` (as Docker streams), `PUT ?digest=`.
    Streamed,
}

struct Job {
    kind: Kind,
    data: Arc<Vec<u8>>,
    digest: String,
    /// Pause before each 64 KiB piece.
    delay: Duration,
}

#[derive(Default, Debug)]
struct Progress {
    /// Upload session URL, once the `POST` answered 202.
    session: Option<String>,
    /// Bytes the registry acknowledged (202 on `PATCH`).
    acked: usize,
    /// The closing request answered 201 with the right digest.
    completed: bool,
    /// What went wrong, for the report.
    error: Option<String>,
}

const PIECE: usize = 64 * 1024;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .redirects(0)
        .build()
}

fn slow(job: &Job, start: usize, end: usize) -> SlowReader {
    SlowReader {
        data: job.data.clone(),
        pos: start,
        end,
        piece: PIECE,
        delay: job.delay,
    }
}

fn status_of(r: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, String> {
    match r {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "HTTP {code}: {}",
            r.into_string().unwrap_or_default()
        )),
        Err(e) => Err(format!("transport: {e}")),
    }
}

fn run_job(base: &str, job: &Job, progress: &Mutex<Progress>) -> Result<(), String> {
    let agent = agent();
    let len = job.data.len();
    if job.kind == Kind::Monolithic {
        let r = status_of(
            agent
                .post(&format!(
                    "{base}/v2/{REPO}/blobs/uploads/?digest={}",
                    job.digest
                ))
                .set("Content-Type", "application/octet-stream")
                .set("Content-Length", &len.to_string())
                .send(slow(job, 0, len)),
        )?;
        return check_created(r, job, progress);
    }
    let r = status_of(
        agent
            .post(&format!("{base}/v2/{REPO}/blobs/uploads/"))
            .call(),
    )?;
    if r.status() != 202 {
        return Err(format!("POST answered {}", r.status()));
    }
    let location = r.header("location").ok_or("no Location")?.to_owned();
    let session = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    progress.lock().unwrap().session = Some(session.clone());
    let chunks: Vec<(usize, usize)> = match job.kind {
        Kind::Chunked => (0..len)
            .step_by(MIB)
            .map(|s| (s, (s + MIB).min(len)))
            .collect(),
        _ => vec![(0, len)],
    };
    for (start, end) in chunks {
        let mut req = agent
            .request("PATCH", &session)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &(end - start).to_string());
        if job.kind == Kind::Chunked {
            req = req.set("Content-Range", &format!("{start}-{}", end - 1));
        }
        let r = status_of(req.send(slow(job, start, end)))?;
        if r.status() != 202 {
            return Err(format!("PATCH answered {}", r.status()));
        }
        let range = r.header("range").unwrap_or("").to_owned();
        if range != format!("0-{}", end - 1) {
            return Err(format!(
                "PATCH {start}-{} answered Range {range:?}",
                end - 1
            ));
        }
        progress.lock().unwrap().acked = end;
    }
    let sep = if session.contains('?') { '&' } else { '?' };
    let r = status_of(
        agent
            .put(&format!("{session}{sep}digest={}", job.digest))
            .call(),
    )?;
    check_created(r, job, progress)
}

fn check_created(r: ureq::Response, job: &Job, progress: &Mutex<Progress>) -> Result<(), String> {
    if r.status() != 201 {
        return Err(format!("closing request answered {}", r.status()));
    }
    if r.header("docker-content-digest") != Some(job.digest.as_str()) {
        return Err(format!(
            "Docker-Content-Digest {:?}",
            r.header("docker-content-digest")
        ));
    }
    progress.lock().unwrap().completed = true;
    Ok(())
}

/// `Range: 0-N` of a session status response as a byte count. `0-0` is read as empty (the
/// header cannot tell 0 from 1 byte; uploads here never stop after exactly one byte).
fn range_len(range: &str) -> usize {
    let end: usize = range
        .strip_prefix("0-")
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("bad Range header {range:?}"));
    if end == 0 {
        0
    } else {
        end + 1
    }
}

fn assert_blob(base: &str, digest: &str, data: &[u8], why: &str) {
    let r = http(
        "GET",
        &format!("{base}/v2/{REPO}/blobs/{digest}"),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{why}: GET blob {digest}: {}", r.text());
    assert_eq!(
        r.body.len(),
        data.len(),
        "{why}: blob {digest} has the wrong length"
    );
    assert_eq!(
        sha256(&r.body),
        digest,
        "{why}: blob {digest} served with other content"
    );
}

#[test]
fn kill9_during_parallel_uploads_loses_nothing_acknowledged_and_exposes_nothing_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(tmp.path(), &[]);
    let base = reg.url();

    // A complete image pushed before the crash.
    let (manifest, manifest_digest) = push_small_image(&base, "crash/image", "before", 7);

    // Sizes 1–8 MiB; paces such that the uploads need from ~0.3 s to ~8 s.
    let jobs: Vec<Arc<Job>> = (0..JOBS)
        .map(|i| {
            let size = (i % 8 + 1) * MIB - (i * 4099) % 65_536;
            let data = noise(size, 1000 + i as u64);
            let digest = sha256(&data);
            let kind = match i % 3 {
                0 => Kind::Monolithic,
                1 => Kind::Chunked,
                _ => Kind::Streamed,
            };
            let seconds = 0.3 + 7.7 * (i as f64) / (JOBS as f64 - 1.0);
            let pieces = size.div_ceil(PIECE) as f64;
            let delay = Duration::from_secs_f64(seconds / pieces);
            Arc::new(Job {
                kind,
                data: Arc::new(data),
                digest,
                delay,
            })
        })
        .collect();
    let progress: Vec<Arc<Mutex<Progress>>> = (0..JOBS)
        .map(|_| Arc::new(Mutex::new(Progress::default())))
        .collect();
    let done = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let threads: Vec<_> = (0..JOBS)
        .map(|i| {
            let (base, job, p, done) = (
                base.clone(),
                jobs[i].clone(),
                progress[i].clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                if let Err(e) = run_job(&base, &job, &p) {
                    p.lock().unwrap().error = Some(e);
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();

    // Kill once a quarter of the uploads finished; the slow ones are still sending.
    let deadline = Instant::now() + Duration::from_secs(60);
    while progress
        .iter()
        .filter(|p| p.lock().unwrap().completed)
        .count()
        < JOBS / 4
    {
        assert!(
            Instant::now() < deadline,
            "uploads did not progress: {progress:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let in_flight_at_kill = JOBS - done.load(Ordering::SeqCst);
    reg.kill9();
    let killed_after = started.elapsed();
    assert!(
        in_flight_at_kill >= 4,
        "too few uploads in flight at the kill ({in_flight_at_kill}); the test did not exercise a crash"
    );
    for t in threads {
        t.join().unwrap();
    }
    let completed: Vec<usize> = (0..JOBS)
        .filter(|&i| progress[i].lock().unwrap().completed)
        .collect();
    let unfinished: Vec<usize> = (0..JOBS)
        .filter(|&i| !progress[i].lock().unwrap().completed)
        .collect();
    assert!(
        !unfinished.is_empty(),
        "every upload finished before the kill"
    );
    for &i in &unfinished {
        let p = progress[i].lock().unwrap();
        let e = p.error.as_deref().unwrap_or("");
        assert!(
            e.starts_with("transport"),
            "upload {i} failed for another reason than the kill: {e}"
        );
    }

    reg.restart();
    let blobs = verify_blob_store(&reg.data_dir);
    assert!(
        blobs >= completed.len() + 3,
        "blob store holds only {blobs} blobs"
    );

    // Every acknowledged upload is there, byte for byte.
    for &i in &completed {
        assert_blob(
            &base,
            &jobs[i].digest,
            &jobs[i].data,
            &format!("upload {i} (acknowledged with 201)"),
        );
    }

    // Nothing partial is visible: an unfinished upload's digest is unknown or complete.
    let mut resumed = 0;
    let mut gone = 0;
    let mut mid_chunk = Vec::new();
    for &i in &unfinished {
        let job = &jobs[i];
        let r = http(
            "GET",
            &format!("{base}/v2/{REPO}/blobs/{}", job.digest),
            &[],
            None,
        );
        match r.status {
            404 => {}
            200 => assert_eq!(
                sha256(&r.body),
                job.digest,
                "upload {i}: partial blob is visible"
            ),
            s => panic!("upload {i}: GET blob answered {s}: {}", r.text()),
        }
        let (session, acked) = {
            let p = progress[i].lock().unwrap();
            (p.session.clone(), p.acked)
        };
        let Some(session) = session else { continue };
        let status = http("GET", &session, &[], None);
        if status.status == 404 {
            gone += 1;
            continue;
        }
        assert_eq!(
            status.status,
            204,
            "upload {i}: session status after restart: {}",
            status.text()
        );
        let have = range_len(status.header("range").expect("Range on session status"));
        assert!(
            have >= acked && have <= job.data.len(),
            "upload {i}: session holds {have} bytes after restart, but {acked} were acknowledged of {}",
            job.data.len()
        );
        if job.kind == Kind::Chunked && have / MIB * MIB != have && have != job.data.len() {
            mid_chunk.push((i, have));
        }
        // Resume from where the registry says it is; the result must be exactly the blob.
        let len = job.data.len();
        if have < len {
            let r = http(
                "PATCH",
                &session,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &format!("{have}-{}", len - 1)),
                ],
                Some(&job.data[have..]),
            );
            assert_eq!(
                r.status,
                202,
                "upload {i}: resuming at {have}: {}",
                r.text()
            );
            assert_eq!(r.header("range"), Some(format!("0-{}", len - 1).as_str()));
        }
        let r = http(
            "PUT",
            &format!("{session}?digest={}", job.digest),
            &[],
            None,
        );
        assert_eq!(
            r.status,
            201,
            "upload {i}: closing a resumed session (registry kept {have} bytes, {acked} acknowledged): {}",
            r.text()
        );
        assert_blob(
            &base,
            &job.digest,
            &job.data,
            &format!("upload {i} resumed at {have}"),
        );
        resumed += 1;
    }

    // The image pushed before the crash is intact.
    for reference in ["before", manifest_digest.as_str()] {
        let r = get_manifest(&base, "crash/image", reference);
        assert_eq!(
            r.status,
            200,
            "manifest {reference} after restart: {}",
            r.text()
        );
        assert_eq!(
            r.body, manifest,
            "manifest {reference} changed across the crash"
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    for d in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().unwrap()) {
        let digest = d["digest"].as_str().unwrap();
        let r = http(
            "GET",
            &format!("{base}/v2/crash/image/blobs/{digest}"),
            &[],
            None,
        );
        assert_eq!(r.status, 200);
        assert_eq!(sha256(&r.body), digest);
    }

    // And the restarted registry takes new pushes.
    let (_, after) = push_small_image(&base, "crash/image", "after", 8);
    assert_eq!(
        get_manifest(&base, "crash/image", "after").header("docker-content-digest"),
        Some(after.as_str())
    );
    let _ = verify_blob_store(&reg.data_dir);

    // Summary for whoever reads the test log.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{:?} in all; killed after {killed_after:?}: {} completed, {} unfinished ({in_flight_at_kill} in flight at the kill); \
             {resumed} sessions resumed, {gone} gone; chunked sessions left mid-chunk: {mid_chunk:?}",
            started.elapsed(),
            completed.len(),
            unfinished.len()
        );
    }
}

/// An acknowledged push: tag, manifest bytes, digest of its referrer (if one was pushed).
type Pushed = (String, Vec<u8>, Option<String>);

/// One request of a manifest-push loop; `Err` on transport failure or an unexpected status.
fn try_request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    ctype: &str,
    body: &[u8],
    want: u16,
) -> Result<ureq::Response, String> {
    let r = status_of(
        agent
            .request(method, url)
            .set("Content-Type", ctype)
            .send_bytes(body),
    )?;
    if r.status() != want {
        return Err(format!("{method} {url} answered {}", r.status()));
    }
    Ok(r)
}

/// Pushes image `n` of a writer (config, layer, manifest under a tag) and, for even `n`, a
/// referrer to it. Returns (tag, manifest bytes, referrer digest).
fn push_numbered(
    agent: &ureq::Agent,
    base: &str,
    writer: usize,
    n: usize,
    done: &Mutex<Vec<Pushed>>,
) -> Result<(), String> {
    let repo = "crash/manifests";
    let blob = |data: &[u8]| -> Result<String, String> {
        let d = sha256(data);
        try_request(
            agent,
            "POST",
            &format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"),
            "application/octet-stream",
            data,
            201,
        )?;
        Ok(d)
    };
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"n":"{writer}-{n}"}}"#
    );
    let layer = noise(2048, (writer * 100_000 + n) as u64);
    let config_digest = blob(config.as_bytes())?;
    let layer_digest = blob(&layer)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let tag = format!("w{writer}-{n}");
    try_request(
        agent,
        "PUT",
        &format!("{base}/v2/{repo}/manifests/{tag}"),
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
        201,
    )?;
    let mut referrer = None;
    if n & 1 == 0 {
        let empty = blob(b"{}")?;
        let art = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.berth.crash.v1",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&manifest), "size": manifest.len()},
        }))
        .unwrap();
        let d = sha256(&art);
        try_request(
            agent,
            "PUT",
            &format!("{base}/v2/{repo}/manifests/{d}"),
            "application/vnd.oci.image.manifest.v1+json",
            &art,
            201,
        )?;
        referrer = Some(d);
    }
    done.lock()
        .unwrap()
        .push((tag.clone(), manifest.clone(), referrer));
    // More tags for the same manifest: most of a tag push is writing the tag link.
    for k in 0..ALIASES {
        let alias = format!("{tag}-a{k}");
        try_request(
            agent,
            "PUT",
            &format!("{base}/v2/{repo}/manifests/{alias}"),
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
            201,
        )?;
        done.lock().unwrap().push((alias, manifest.clone(), None));
    }
    Ok(())
}

/// Extra tags pushed for each numbered image.
const ALIASES: usize = 3;

/// Every path under `dir`, relative to it (diagnostics).
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Checks the repository after a restart: acknowledged pushes are whole, and everything the
/// registry lists (tags, referrers) resolves to complete content.
fn check_manifests_repo(reg: &Registry, done: &[Pushed], interrupted: &[String]) {
    let base = reg.url();
    for (tag, manifest, referrer) in done {
        let r = get_manifest(&base, "crash/manifests", tag);
        assert_eq!(r.status, 200, "acknowledged tag {tag} lost: {}", r.text());
        assert_eq!(&r.body, manifest, "tag {tag} changed");
        if let Some(d) = referrer {
            let list = http(
                "GET",
                &format!("{base}/v2/crash/manifests/referrers/{}", sha256(manifest)),
                &[],
                None,
            );
            assert_eq!(list.status, 200);
            assert!(
                list.text().contains(d.as_str()),
                "acknowledged referrer {d} of {tag} missing: {}",
                list.text()
            );
        }
    }
    for tag in interrupted {
        let r = get_manifest(&base, "crash/manifests", tag);
        assert!(
            r.status == 404 || r.status == 200,
            "interrupted tag {tag}: {} {}",
            r.status,
            r.text()
        );
    }
    let tags = get_json(&format!("{base}/v2/crash/manifests/tags/list"));
    for tag in tags["tags"].as_array().unwrap() {
        let tag = tag.as_str().unwrap();
        let r = get_manifest(&base, "crash/manifests", tag);
        assert_eq!(
            r.status,
            200,
            "GET /v2/crash/manifests/tags/list lists `{tag}` (a push cut by kill -9: {}) but GET \
             /v2/crash/manifests/manifests/{tag} answers {}; on disk under \
             repositories/crash/manifests/_manifests/tags/{tag}: {:?}",
            interrupted.iter().any(|t| t == tag),
            r.text(),
            files_under(
                &reg.data_dir
                    .join("repositories/crash/manifests/_manifests/tags")
                    .join(tag)
            )
        );
        assert_eq!(
            r.header("docker-content-digest"),
            Some(sha256(&r.body).as_str()),
            "tag {tag}"
        );
        let doc = r.json();
        for d in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().unwrap()) {
            let digest = d["digest"].as_str().unwrap();
            let b = http(
                "GET",
                &format!("{base}/v2/crash/manifests/blobs/{digest}"),
                &[],
                None,
            );
            assert_eq!(b.status, 200, "blob {digest} of listed tag {tag}");
            assert_eq!(sha256(&b.body), digest);
        }
        let refs = get_json(&format!(
            "{base}/v2/crash/manifests/referrers/{}",
            sha256(&r.body)
        ));
        for desc in refs["manifests"].as_array().unwrap() {
            let d = desc["digest"].as_str().unwrap();
            let m = get_manifest(&base, "crash/manifests", d);
            assert_eq!(m.status, 200, "listed referrer {d} does not resolve");
            assert_eq!(sha256(&m.body), d);
        }
    }
}

/// Four writers push small images, tags and referrers in a loop; the registry is killed with
/// SIGKILL mid-stream and restarted, several rounds on the same data directory.
#[test]
fn kill9_during_manifest_pushes_leaves_every_tag_whole() {
    const ROUNDS: usize = 10;
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(tmp.path(), &[]);
    let base = reg.url();
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut first = 0;
    let mut interrupted = Vec::new();
    for round in 0..ROUNDS {
        let start_len = done.lock().unwrap().len();
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let (base, done) = (base.clone(), done.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    for n in first.. {
                        if push_numbered(&agent, &base, w, n, &done).is_err() {
                            return n;
                        }
                    }
                    unreachable!()
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.lock().unwrap().len() < start_len + 48 {
            assert!(
                Instant::now() < deadline,
                "manifest pushes did not progress in round {round}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        reg.kill9();
        let stopped_at: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (w, n) in stopped_at.iter().enumerate() {
            interrupted.push(format!("w{w}-{n}"));
            interrupted.extend((0..ALIASES).map(|k| format!("w{w}-{n}-a{k}")));
        }
        first = stopped_at.iter().max().unwrap() + 1;
        reg.restart();
        let _ = verify_blob_store(&reg.data_dir);
        let snapshot = done.lock().unwrap().clone();
        check_manifests_repo(&reg, &snapshot, &interrupted);
    }
}
