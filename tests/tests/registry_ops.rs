//! Metrics, health and webhooks against the real binary: a real Prometheus scrapes `/metrics`
//! on `[metrics] addr` and answers a query for a counter; `promtool check metrics` accepts the
//! exposition; a local receiver gets push/pull/delete events in the CNCF envelope, with event
//! filters, and every event queued while it was down (across a registry restart).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_tests::*;
use serde_json::Value;

fn config_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("registry.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_metrics_and_promtool_accepts_them() {
    require("prometheus", "apt-get install prometheus");
    require("promtool", "apt-get install prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let cfg = config_file(
        tmp.path(),
        &format!("[metrics]\naddr = \"{metrics_addr}\"\n"),
    );
    let reg = Registry::start(tmp.path(), &["--config", cfg.to_str().unwrap()]);
    let url = reg.url();
    for i in 0..3 {
        push_small_image(&url, "prom/app", &format!("v{i}"), i);
    }
    assert_eq!(get_manifest(&url, "prom/app", "v0").status, 200);
    // On its own address: metrics and health there, not on the API address.
    let m = http("GET", &format!("http://{metrics_addr}/metrics"), &[], None);
    assert_eq!(m.status, 200);
    assert_eq!(
        http("GET", &format!("http://{metrics_addr}/readyz"), &[], None).status,
        200
    );
    assert_eq!(
        http("GET", &format!("http://{metrics_addr}/livez"), &[], None).status,
        200
    );
    assert_eq!(
        http("GET", &format!("{url}/metrics"), &[], None).status,
        404
    );
    let text = m.text();
    assert!(
        text.contains(
            "registry_http_requests_total{handler=\"manifest\",method=\"PUT\",code=\"2xx\"} 3"
        ),
        "{text}"
    );
    // promtool's own checks (format and naming lint).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(&m.body).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A real Prometheus scrapes it every second.
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let prom_cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: berth\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let query =
        pct("sum(registry_http_requests_total{handler=\"manifest\",method=\"PUT\",code=\"2xx\"})");
    let deadline = Instant::now() + Duration::from_secs(60);
    let value = loop {
        assert!(
            Instant::now() < deadline,
            "Prometheus never reported the counter; its log:\n{}",
            std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
        let Ok(r) = ureq::get(&format!("http://{prom_addr}/api/v1/query?query={query}")).call()
        else {
            continue;
        };
        let v: Value = r.into_json().unwrap();
        if let Some(s) = v["data"]["result"][0]["value"][1].as_str() {
            break s.to_owned();
        }
    };
    assert_eq!(value, "3");
    // The target is up (scrapes succeed, the format parses).
    let up: Value = ureq::get(&format!("http://{prom_addr}/api/v1/query?query=up"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}

/// A tiny HTTP/1.1 server that records each request's headers and body and answers 200.
/// One request the receiver saw: its headers and its body.
type Received = (Vec<(String, String)>, Vec<u8>);

struct Receiver {
    requests: Arc<Mutex<Vec<Received>>>,
    port: u16,
}

impl Receiver {
    /// Listens on `port` (0: any free port, see [`Receiver::port`]).
    fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap();
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                        }
                        let len: usize = headers
                            .iter()
                            .find(|(k, _)| k == "content-length")
                            .map_or(0, |(_, v)| v.parse().unwrap());
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        seen.lock().unwrap().push((headers, body));
                        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                    }
                });
            }
        });
        Self { requests, port }
    }

    /// Every event received so far, with the request's headers.
    fn events(&self) -> Vec<(Vec<(String, String)>, Value)> {
        let mut out = Vec::new();
        for (headers, body) in self.requests.lock().unwrap().iter() {
            let envelope: Value = serde_json::from_slice(body).unwrap();
            for e in envelope["events"].as_array().unwrap() {
                out.push((headers.clone(), e.clone()));
            }
        }
        out
    }

    /// Waits until `done` holds for the events received.
    fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let events: Vec<Value> = self.events().into_iter().map(|(_, e)| e).collect();
            if done(&events) {
                return events;
            }
            assert!(Instant::now() < deadline, "{what}: got only {events:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn has(events: &[Value], action: &str, repo: &str, pred: impl Fn(&Value) -> bool) -> bool {
    events
        .iter()
        .any(|e| e["action"] == action && e["target"]["repository"] == repo && pred(&e["target"]))
}

#[test]
fn webhooks_deliver_push_pull_delete_in_the_cncf_envelope_with_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let all = Receiver::start(0);
    let deletes = Receiver::start(0);
    let (all_port, deletes_port) = (all.port, deletes.port);
    let cfg = config_file(
        tmp.path(),
        &format!(
            "[[notifications]]\nurl = \"http://127.0.0.1:{all_port}/hook\"\nheaders = {{ Authorization = \"Bearer hook-secret\" }}\n\n[[notifications]]\nurl = \"http://127.0.0.1:{deletes_port}/deletes\"\nevents = [\"delete\"]\n"
        ),
    );
    let reg = Registry::start(tmp.path(), &["--config", cfg.to_str().unwrap(), "--delete"]);
    let url = reg.url();
    let (manifest, digest) = push_small_image(&url, "hooks/app", "v1", 7);
    assert_eq!(get_manifest(&url, "hooks/app", "v1").status, 200);
    assert_eq!(
        http(
            "DELETE",
            &format!("{url}/v2/hooks/app/manifests/{digest}"),
            &[],
            None
        )
        .status,
        202
    );
    let events = all.wait_for("push, pull and delete", |ev| {
        has(ev, "push", "hooks/app", |t| t["tag"] == "v1")
            && has(ev, "pull", "hooks/app", |_| true)
            && has(ev, "delete", "hooks/app", |_| true)
    });
    let push = events
        .iter()
        .find(|e| e["action"] == "push" && e["target"]["tag"] == "v1")
        .unwrap();
    // The CNCF envelope, field for field.
    assert_eq!(push["target"]["digest"], digest.as_str());
    assert_eq!(
        push["target"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(push["target"]["size"], manifest.len());
    assert_eq!(push["target"]["length"], manifest.len());
    assert_eq!(
        push["target"]["url"],
        format!("http://{}/v2/hooks/app/manifests/{digest}", reg.addr).as_str()
    );
    assert_eq!(push["request"]["method"], "PUT");
    assert!(push["request"]["addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(!push["request"]["id"].as_str().unwrap().is_empty());
    assert!(push["source"]["instanceID"].as_str().is_some());
    assert!(push["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(push["id"].as_str().is_some());
    // Blob pushes are events too (config and layer).
    assert!(
        events
            .iter()
            .filter(
                |e| e["action"] == "push" && e["target"]["mediaType"] == "application/octet-stream"
            )
            .count()
            >= 2
    );
    let pull = events.iter().find(|e| e["action"] == "pull").unwrap();
    assert_eq!(pull["target"]["digest"], digest.as_str());
    assert_eq!(pull["target"]["tag"], "v1");
    let (headers, _) = &all.events()[0];
    let header = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("content-type"),
        Some("application/vnd.docker.distribution.events.v2+json")
    );
    assert_eq!(header("authorization"), Some("Bearer hook-secret"));
    // The filtered endpoint gets the delete only.
    deletes.wait_for("the delete", |ev| has(ev, "delete", "hooks/app", |_| true));
    std::thread::sleep(Duration::from_millis(500));
    let only: Vec<Value> = deletes.events().into_iter().map(|(_, e)| e).collect();
    assert!(only.iter().all(|e| e["action"] == "delete"), "{only:#?}");
}

#[test]
fn webhooks_queued_while_the_receiver_is_down_arrive_after_a_registry_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(
        tmp.path(),
        &format!("[[notifications]]\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"push\", \"delete\"]\n"),
    );
    let mut reg = Registry::start(tmp.path(), &["--config", cfg.to_str().unwrap(), "--delete"]);
    let url = reg.url();
    let mut digests = BTreeSet::new();
    for i in 0..3u64 {
        let (_, d) = push_small_image(&url, "down/app", &format!("v{i}"), 40 + i);
        digests.insert(d);
    }
    let gone = digests.iter().next().unwrap().clone();
    assert_eq!(
        http(
            "DELETE",
            &format!("{url}/v2/down/app/manifests/{gone}"),
            &[],
            None
        )
        .status,
        202
    );
    // Let it fail a few times, then kill it (-9) and start it again while the receiver is
    // still down.
    std::thread::sleep(Duration::from_secs(2));
    reg.restart();
    let pending = http("GET", &format!("{url}/metrics"), &[], None).text();
    assert!(
        pending.contains("berth_registry_notifications_pending{endpoint=\"0\"} 10"),
        "3 manifests + 6 blobs + 1 delete wait on disk:\n{pending}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let receiver = Receiver::start(port);
    let events = receiver.wait_for("every queued event", |ev| {
        digests
            .iter()
            .all(|d| has(ev, "push", "down/app", |t| t["digest"] == d.as_str()))
            && has(ev, "delete", "down/app", |t| t["digest"] == gone.as_str())
            && ev.len() >= 10
    });
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10, "each event once: {events:#?}");
    // Delivered events leave the outbox.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http("GET", &format!("{url}/metrics"), &[], None)
        .text()
        .contains("berth_registry_notifications_pending{endpoint=\"0\"} 0")
    {
        assert!(Instant::now() < deadline, "outbox not emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
}
