//! Bridge networking end to end, as root: `eth0` with an address on `berth0` and a default
//! route, container to container, container to the host, container to the outside through
//! forwarding and MASQUERADE (a second network namespace plays "the internet"), `-p`/`-P`
//! published ports answered over HTTP on the host, `berth port`, a taken port, `--network
//! none`/`host`, restarts, and what `rm` gives back (veth, address). Docker's own networking
//! must be left as it was.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::{bin, require, run, TestAddr};

const IPAM: &str = "/run/berth/network/berth0.json";
const PAGE: &str = "hello from berth\n";

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    /// A data root with busybox imported as `bb:1` (with `/www/index.html`) and, exposing
    /// 80/tcp, as `web:1`.
    fn new() -> Self {
        require("ip", "install it with `apt-get install iproute2`");
        require("iptables", "install it with `apt-get install iptables`");
        berth_tests::require_root();
        let tmp = tempfile::tempdir().unwrap();
        let tar = berth_tests::busybox_rootfs_tar(tmp.path(), &[("www/index.html", PAGE)]);
        let env = Self { tmp };
        env.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
        env.ok(&[
            "import",
            "--change",
            "EXPOSE 80",
            tar.to_str().unwrap(),
            "web:1",
        ]);
        env
    }

    fn data_root(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(bin("berth"))
            .arg("--data-root")
            .arg(self.data_root())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs berth, asserting success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed with {}: {}",
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `run -d FLAGS IMAGE CMD...`; the container ID.
    fn detach(&self, flags: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(cmd);
        let id = self.ok(&args).trim().to_owned();
        assert_eq!(id.len(), 64, "{id}");
        id
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let path = self
            .data_root()
            .join("containers")
            .join(id)
            .join("state.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The container's address, from `state.json`.
    fn ip(&self, id: &str) -> Ipv4Addr {
        let v = self.state(id);
        v["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("no IPAddress in {v}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Never leave a container (and so a veth, an address, a proxy) behind.
        let root = self.data_root().join("containers");
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let _ = self.berth(&["rm", "-f", &e.file_name().to_string_lossy()]);
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.tmp.path().display().to_string();
        for line in mounts.lines() {
            if let Some(target) = line.split(' ').nth(1).filter(|t| t.starts_with(&prefix)) {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The bridge's subnet as recorded by Berth: network address and prefix.
fn subnet() -> (Ipv4Addr, u8) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(IPAM).unwrap()).unwrap();
    let s = v["Subnet"].as_str().unwrap();
    let (net, prefix) = s.split_once('/').unwrap();
    (net.parse().unwrap(), prefix.parse().unwrap())
}

fn in_subnet(ip: Ipv4Addr) -> bool {
    let (net, prefix) = subnet();
    let mask = u32::MAX << (32 - u32::from(prefix));
    u32::from(ip) & mask == u32::from(net)
}

/// Whether the allocation file gives `id` an address.
fn allocated(id: &str) -> bool {
    std::fs::read_to_string(IPAM)
        .unwrap_or_default()
        .contains(id)
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// `GET /` over HTTP/1.0: the body, or `None` when nothing answers (yet).
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

fn httpd(port: u16) -> Vec<String> {
    ["httpd", "-f", "-p", &port.to_string(), "-h", "/www"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

#[test]
fn bridge_container_gets_eth0_route_hosts_and_resolv_conf() {
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip route; echo ---; cat /etc/hosts; echo ---; \
         cat /etc/resolv.conf; echo ---; hostname; ip -o link show lo",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    // `2: eth0    inet 10.87.0.7/16 brd 10.87.255.255 scope global eth0`
    let addr = parts[0]
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no IPv4 address on eth0: {out}"));
    let (ip, prefix) = addr.split_once('/').unwrap();
    let ip: Ipv4Addr = ip.parse().unwrap();
    assert!(in_subnet(ip), "{ip} not in {:?}", subnet());
    assert_eq!(prefix.parse::<u8>().unwrap(), subnet().1);
    let gateway = Ipv4Addr::from(u32::from(subnet().0) + 1);
    assert!(
        parts[0].contains(&format!("default via {gateway} dev eth0")),
        "{out}"
    );
    // Docker's hosts file, with the container's address and hostname last.
    let hostname = parts[3].lines().next().unwrap();
    assert_eq!(hostname.len(), 12, "{out}");
    assert!(parts[1].starts_with("127.0.0.1\tlocalhost\n"), "{out}");
    assert!(
        parts[1].ends_with(&format!("{ip}\t{hostname}\n")),
        "{}",
        parts[1]
    );
    assert!(parts[2].contains("nameserver "), "{}", parts[2]);
    assert!(
        !parts[2].contains("nameserver 127."),
        "a loopback resolver is unreachable from the container: {}",
        parts[2]
    );
    assert!(parts[3].contains("UP"), "lo is up: {out}");
}

#[test]
fn containers_reach_each_other_and_the_host() {
    let env = Env::new();
    let mut cmd = vec!["bb:1".to_owned()];
    cmd.extend(httpd(8000));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let server = env.detach(&[], &cmd);
    let server_ip = env.ip(&server);
    assert!(in_subnet(server_ip));

    // The host reaches the container directly.
    eventually("the web server in the container", || {
        http_get(&format!("{server_ip}:8000")).as_deref() == Some(PAGE)
    });

    // Another container reaches it by address: ICMP and TCP.
    let out = env.ok(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        &format!("ping -c1 -W5 {server_ip} >/dev/null && echo ping-ok; wget -qO- http://{server_ip}:8000/"),
    ]);
    assert_eq!(out, format!("ping-ok\n{PAGE}"));

    // A container reaches a server on an address of the host (not loopback, not a bridge).
    let test_addr = TestAddr::new();
    let host = test_addr.ip;
    let listener = TcpListener::bind((host, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || {
        let (mut c, peer) = listener.accept().unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        (got, peer.ip())
    });
    let client = env.ok(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        &format!("echo over-the-bridge | nc {host} {port}"),
    ]);
    assert_eq!(client, "");
    let (got, peer) = accept.join().unwrap();
    assert_eq!(got, "over-the-bridge\n");
    match peer {
        std::net::IpAddr::V4(p) => assert!(in_subnet(p), "came from {p}"),
        std::net::IpAddr::V6(p) => panic!("came from {p}"),
    }
}

/// A network namespace with its own veth to the host, standing in for a remote network: it
/// has no route back to the bridge's subnet, so only MASQUERADE lets replies come back.
struct Outside {
    ns: String,
    host_if: String,
}

impl Outside {
    fn new(ns: &str, host_if: &str, host_addr: &str, ns_addr: &str) -> Self {
        let o = Self {
            ns: ns.to_owned(),
            host_if: host_if.to_owned(),
        };
        o.drop_links();
        for args in [
            format!("netns add {ns}"),
            format!("link add {host_if} type veth peer name eth0 netns {ns}"),
            format!("addr add {host_addr}/30 dev {host_if}"),
            format!("link set {host_if} up"),
            format!("-n {ns} addr add {ns_addr}/30 dev eth0"),
            format!("-n {ns} link set eth0 up"),
            format!("-n {ns} link set lo up"),
        ] {
            run(Command::new("ip").args(args.split(' ')));
        }
        o
    }

    fn drop_links(&self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.drop_links();
    }
}

#[test]
fn concurrent_runs_get_distinct_addresses() {
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(bin("berth"))
                .arg("--data-root")
                .arg(env.data_root())
                .args(["run", "-d", "bb:1", "sleep", "30"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).trim().to_owned()
        })
        .collect();
    let ips: std::collections::BTreeSet<Ipv4Addr> = ids.iter().map(|id| env.ip(id)).collect();
    assert_eq!(ips.len(), 4, "{ips:?}");
    for id in &ids {
        assert!(allocated(id));
    }
}

#[test]
fn outbound_traffic_is_forwarded_and_masqueraded() {
    let env = Env::new();
    let before = run(Command::new("iptables").args(["-S", "FORWARD"]));
    // Names and a /30 of TEST-NET-2 of this process's own, so parallel suites do not collide.
    let pid = std::process::id();
    let base = (pid % 64) * 4;
    let remote = format!("198.51.100.{}", base + 2);
    let outside = Outside::new(
        &format!("berthtest-out-{pid}"),
        &format!("bto{pid}"),
        &format!("198.51.100.{}", base + 1),
        &remote,
    );
    // A TCP server in the outside namespace, answering one connection.
    let mut server = Command::new("ip")
        .args(["netns", "exec", &outside.ns])
        .arg(berth_tests::run(Command::new("sh").args(["-c", "command -v busybox"])).trim())
        .args(["nc", "-l", "-p", "9000", "-e", "echo", "from-outside"])
        .spawn()
        .unwrap();
    // The host routes to it; the container's traffic must be forwarded (FORWARD's policy is
    // Docker's DROP here) and masqueraded (the namespace knows no route to the bridge).
    let mut answer = String::new();
    for _ in 0..50 {
        answer = env.ok(&[
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            &format!("nc {remote} 9000 </dev/null || true"),
        ]);
        if !answer.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(answer, "from-outside\n");
    // Our rules sit in our chains; FORWARD's policy and Docker's rules are as they were, plus
    // at most our one jump.
    let after = run(Command::new("iptables").args(["-S", "FORWARD"]));
    let without_ours: Vec<&str> = after
        .lines()
        .filter(|l| *l != "-A FORWARD -j BERTH-FORWARD")
        .collect();
    let before_without_ours: Vec<&str> = before
        .lines()
        .filter(|l| *l != "-A FORWARD -j BERTH-FORWARD")
        .collect();
    assert_eq!(without_ours, before_without_ours);
    assert_eq!(
        after
            .lines()
            .filter(|l| l.contains("BERTH-FORWARD"))
            .count(),
        1,
        "{after}"
    );
}

#[test]
fn published_ports_answer_on_loopback_and_host_addresses() {
    let env = Env::new();
    let fixed = berth_tests::free_port();
    let mut cmd = vec![
        "-p".to_owned(),
        "0:80".to_owned(),
        "-p".to_owned(),
        format!("{fixed}:80"),
        "-p".to_owned(),
        "127.0.0.1::80".to_owned(),
        "--name".to_owned(),
        "web".to_owned(),
        "bb:1".to_owned(),
    ];
    cmd.extend(httpd(80));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let id = env.detach(&[], &cmd);

    let ports = env.ok(&["port", "web"]);
    let lines: Vec<&str> = ports.lines().collect();
    // Three bindings of 80/tcp: a random one and the fixed one on 0.0.0.0 (and :: when the
    // host has IPv6), a random one on 127.0.0.1; in Docker's order.
    let on = |ip: &str| -> Vec<u16> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("80/tcp -> {ip}:")))
            .map(|p| p.parse().unwrap())
            .collect()
    };
    let any = on("0.0.0.0");
    assert_eq!(any.len(), 2, "{ports}");
    assert!(any.contains(&fixed), "{ports}");
    let random = *any.iter().find(|p| **p != fixed).unwrap();
    let local = on("127.0.0.1");
    assert_eq!(local.len(), 1, "{ports}");
    assert!(lines.iter().all(|l| l.starts_with("80/tcp -> ")), "{ports}");

    // `inspect` shows the endpoint and the bindings the Docker way.
    let ip: Ipv4Addr = env
        .ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "web",
        ])
        .trim()
        .parse()
        .unwrap();
    assert!(in_subnet(ip), "{ip}");
    let bound = env.ok(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Ports}}",
        "web",
    ]);
    assert!(
        bound.contains(&format!("\"HostPort\":\"{fixed}\"")),
        "{bound}"
    );

    // Real HTTP through the proxy: loopback and a non-loopback address of the host.
    let test_addr = TestAddr::new();
    for addr in [
        format!("127.0.0.1:{fixed}"),
        format!("127.0.0.1:{random}"),
        format!("127.0.0.1:{}", local[0]),
        format!("{}:{fixed}", test_addr.ip),
    ] {
        eventually(&format!("GET http://{addr}/"), || {
            http_get(&addr).as_deref() == Some(PAGE)
        });
    }
    // One port: its host addresses only.
    let one = env.ok(&["port", "web", "80/tcp"]);
    assert!(
        one.lines().any(|l| l == format!("0.0.0.0:{fixed}")),
        "{one}"
    );
    assert!(one.lines().all(|l| !l.contains("->")), "{one}");
    let out = env.berth(&["port", "web", "81"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Error: No public port '81' published for web"),
        "{}",
        text(&out.stderr)
    );
    // ps shows them.
    let ps = env.ok(&["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{fixed}->80/tcp")), "{ps}");

    // Stopped: no ports any more, and the host port is free again.
    env.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(env.ok(&["port", "web"]), "");
    assert!(!allocated(&id));
    eventually("the port to be free", || {
        TcpListener::bind(("0.0.0.0", fixed)).is_ok()
    });
}

#[test]
fn a_foreground_run_serves_its_published_ports_until_it_exits() {
    let env = Env::new();
    let port = berth_tests::free_port();
    // `httpd` without -f forks into the background; the shell keeps the container up.
    let mut child = Command::new(bin("berth"))
        .arg("--data-root")
        .arg(env.data_root())
        .args([
            "run",
            "--rm",
            "--name",
            "fg",
            "-p",
            &format!("127.0.0.1:{port}:80"),
        ])
        .args(["bb:1", "sh", "-c", "httpd -p 80 -h /www && sleep 3"])
        .spawn()
        .unwrap();
    eventually("GET through the foreground run's proxy", || {
        http_get(&format!("127.0.0.1:{port}")).as_deref() == Some(PAGE)
    });
    assert_eq!(
        env.ok(&["port", "fg"]),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    let id = env.ok(&["ps", "-q", "--no-trunc"]).trim().to_owned();
    assert!(allocated(&id));
    assert!(child.wait().unwrap().success());
    assert!(!allocated(&id));
    // The proxy went with the process.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn publish_all_publishes_the_images_exposed_ports() {
    let env = Env::new();
    let mut cmd = vec!["-P".to_owned(), "web:1".to_owned()];
    cmd.extend(httpd(80));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let id = env.detach(&[], &cmd);
    let ports = env.ok(&["port", &id]);
    let port: u16 = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("80/tcp not published: {ports}"))
        .parse()
        .unwrap();
    eventually("GET through -P", || {
        http_get(&format!("127.0.0.1:{port}")).as_deref() == Some(PAGE)
    });
    // Recorded like Docker's NetworkSettings.Ports.
    let v = env.state(&id);
    assert_eq!(
        v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    // Without -P, EXPOSE publishes nothing.
    let id2 = env.detach(&[], &["web:1", "sleep", "30"]);
    assert_eq!(env.ok(&["port", &id2]), "");
}

#[test]
fn a_taken_port_fails_the_run_with_125_and_releases_everything() {
    let env = Env::new();
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let publish = format!("{port}:80");
    for detach in [true, false] {
        let mut args = vec!["run"];
        if detach {
            args.push("-d");
        }
        args.extend_from_slice(&["--name", "clash", "-p", &publish, "bb:1", "true"]);
        let out = env.berth(&args);
        assert_eq!(out.status.code(), Some(125), "detach={detach}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "Bind for 0.0.0.0:{port} failed: port is already allocated"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("driver failed programming external connectivity on endpoint clash"),
            "{stderr}"
        );
        let id = env.ok(&["ps", "-aq", "--no-trunc"]).trim().to_owned();
        assert!(!allocated(&id), "the address is released");
        assert!(!link_exists(&format!("veth{}", &id[..11])));
        env.ok(&["rm", "clash"]);
    }
    // Bad values are refused before anything is created.
    for (value, want) in [
        ("abc", "invalid containerPort: abc"),
        ("80/xyz", "invalid proto: xyz"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        (
            "8000-8001:80-82",
            "invalid ranges specified for container and host Ports",
        ),
    ] {
        let out = env.berth(&["run", "--rm", "-p", value, "bb:1", "true"]);
        assert_eq!(out.status.code(), Some(125), "{value}");
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
    }
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}

#[test]
fn network_none_has_only_lo_and_host_ignores_published_ports() {
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:80",
        "bb:1",
        "sh",
        "-c",
        "ls /sys/class/net; grep -c . /etc/hosts",
    ]);
    assert_eq!(out, "lo\n6\n");
    let out = env.berth(&["run", "--rm", "--network", "nope", "bb:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("network nope not found"),
        "{}",
        text(&out.stderr)
    );
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "8080:80",
        "bb:1",
        "true",
    ]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("Published ports are discarded when using host network mode"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rm_and_exits_give_back_the_veth_and_the_address() {
    let env = Env::new();
    let id = env.detach(&[], &["bb:1", "sleep", "30"]);
    let veth = format!("veth{}", &id[..11]);
    assert!(link_exists(&veth));
    assert!(allocated(&id));
    let ip = env.ip(&id);
    env.ok(&["rm", "-f", &id]);
    assert!(!allocated(&id), "{ip} is released");
    // The pair goes with the container's network namespace (asynchronously).
    eventually("the veth to go", || !link_exists(&veth));

    // A foreground --rm run releases its address when it exits.
    let out = env.ok(&["run", "--rm", "bb:1", "sh", "-c", "hostname"]);
    let short = out.trim();
    assert_eq!(short.len(), 12);
    assert!(!allocated(short));
    eventually("the veth to go", || {
        !link_exists(&format!("veth{}", &short[..11]))
    });

    // A restarted container is connected again, with the same address.
    let id = env.detach(
        &["--restart", "on-failure:1"],
        &[
            "bb:1",
            "sh",
            "-c",
            "ip -o -4 addr show eth0 | awk '{print $4}'; exit 3",
        ],
    );
    assert_eq!(env.ok(&["wait", &id]), "3\n");
    let logs = env.ok(&["logs", &id]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert_eq!(lines[0], lines[1], "{logs}");
    assert!(lines[0].contains('/'), "{logs}");
    assert!(!allocated(&id));
    eventually("the veth to go", || {
        !link_exists(&format!("veth{}", &id[..11]))
    });
}

#[test]
fn dockers_networking_is_untouched() {
    require(
        "docker",
        "the Docker Engine is part of this machine's setup",
    );
    let env = Env::new();
    let dump = || {
        let filter = run(Command::new("iptables").args(["-S"]));
        let nat = run(Command::new("iptables").args(["-t", "nat", "-S"]));
        filter
            .lines()
            .chain(nat.lines())
            .filter(|l| l.contains("DOCKER") || l.starts_with("-P "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let before = dump();
    env.ok(&["run", "--rm", "-p", "0:80", "bb:1", "true"]);
    assert_eq!(dump(), before);
    assert!(
        before.iter().any(|l| l.starts_with("-P FORWARD")),
        "{before:?}"
    );
    let ls = run(Command::new("docker").args(["network", "ls", "--format", "{{.Name}}"]));
    assert!(ls.lines().any(|l| l == "bridge"), "{ls}");
}
