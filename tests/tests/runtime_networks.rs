//! User-defined networks end to end, as root: containers on one network reach each other by
//! name, `--network-alias` and host name through the embedded DNS server (127.0.0.11), and
//! nothing on another network or the default bridge reaches them; `--internal` has no way
//! out (a network namespace made here plays "the internet"); the embedded server forwards
//! other names to `--dns` (a tiny responder in such a namespace); `--link` env and hosts;
//! `--network container:NAME`; published ports on a user network; `network rm` refused
//! while in use and leaving nothing behind; `network ls` shaped like Docker's; `network
//! connect`/`disconnect` of a running container.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command};
use std::time::Duration;

use berth_tests::{require, run, ContainerEnv};

/// The shared data root, whose networks go too (after its containers).
struct Env(ContainerEnv);

impl std::ops::Deref for Env {
    type Target = ContainerEnv;
    fn deref(&self) -> &ContainerEnv {
        &self.0
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.0.container_ids() {
            let _ = self.0.berth(&["rm", "-f", &id]);
        }
        let names = self
            .0
            .ok(&["network", "ls", "-q", "--filter", "type=custom"]);
        for id in names.lines() {
            let _ = self.0.berth(&["network", "rm", id]);
        }
    }
}

fn env() -> Env {
    require("ip", "install it with `apt-get install iproute2`");
    require("iptables", "install it with `apt-get install iptables`");
    Env(ContainerEnv::new(&[(
        "www/index.html",
        "hello from a user network\n",
    )]))
}

/// A network's definition as `network inspect` gives it.
fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let out = env.ok(&["network", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn bridge_of(env: &Env, name: &str) -> String {
    inspect(env, name)["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ip_of(env: &Env, id: &str) -> String {
    env.state(id)["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until `script` (a TCP server) listens: a few tries of `nc -z`.
const SERVE: &str = "nc -ll -p 8000 -e echo pong";

/// A network namespace with a veth to the host, standing in for a remote network.
struct Outside {
    ns: String,
    host_if: String,
    /// The namespace's address.
    addr: String,
    /// A process living in the namespace (for entering it).
    holder: Child,
}

impl Outside {
    fn new(slot: u32) -> Self {
        let pid = std::process::id();
        let base = (pid % 16) * 16 + slot * 4;
        let (host_addr, addr) = (
            format!("203.0.113.{}", base + 1),
            format!("203.0.113.{}", base + 2),
        );
        let ns = format!("btn-{pid}-{slot}");
        let host_if = format!("btn{pid}{slot}");
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        for args in [
            format!("netns add {ns}"),
            format!("link add {host_if} type veth peer name eth0 netns {ns}"),
            format!("addr add {host_addr}/30 dev {host_if}"),
            format!("link set {host_if} up"),
            format!("-n {ns} addr add {addr}/30 dev eth0"),
            format!("-n {ns} link set eth0 up"),
            format!("-n {ns} link set lo up"),
        ] {
            run(Command::new("ip").args(args.split(' ')));
        }
        let holder = Command::new("ip")
            .args(["netns", "exec", &ns, "sleep", "300"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        Self {
            ns,
            host_if,
            addr,
            holder,
        }
    }

    /// A TCP server in the namespace answering `from-outside`.
    fn tcp_server(&self, port: u16) -> Child {
        let busybox = run(Command::new("sh").args(["-c", "command -v busybox"]));
        Command::new("ip")
            .args(["netns", "exec", &self.ns, busybox.trim()])
            .args([
                "nc",
                "-ll",
                "-p",
                &port.to_string(),
                "-e",
                "echo",
                "from-outside",
            ])
            .spawn()
            .unwrap()
    }

    /// A UDP socket bound to `addr:53` inside the namespace (sockets keep the namespace they
    /// were made in; the thread that makes it enters the namespace of the holder process).
    fn dns_socket(&self) -> UdpSocket {
        let addr: Ipv4Addr = self.addr.parse().unwrap();
        let pid = i32::try_from(self.holder.id()).unwrap();
        // `ip netns exec` execs `sleep`: the holder's PID is in the namespace.
        berth_runtime::network::in_netns(pid, move || {
            UdpSocket::bind((addr, 53)).map_err(|e| {
                berth_runtime::network::NetworkError::Namespace {
                    pid,
                    errno: berth_runtime::syscall::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                }
            })
        })
        .unwrap()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// Answers `A` queries for any name with `answer` (other types: an empty answer), until the
/// socket is dropped; counts the queries.
fn dns_responder(
    sock: UdpSocket,
    answer: Ipv4Addr,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let q = &buf[..n];
            // Header, then the question up to its type and class.
            let mut pos = 12;
            while pos < n && q[pos] != 0 {
                pos += usize::from(q[pos]) + 1;
            }
            let end = pos + 5;
            if end > n {
                continue;
            }
            let is_a = q[pos + 1..pos + 3] == [0, 1];
            let mut r = q[..end].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[6..12].copy_from_slice(&[0, u8::from(is_a), 0, 0, 0, 0]);
            if is_a {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer.octets());
            }
            let _ = sock.send_to(&r, peer);
        }
    });
    count
}

#[test]
fn containers_on_a_network_reach_each_other_by_name_alias_and_hostname_and_no_one_else_does() {
    let env = env();
    env.ok(&["network", "create", "front"]);
    env.ok(&["network", "create", "back"]);
    let srv = env.detach(
        &[
            "--name",
            "api",
            "--hostname",
            "api-host",
            "--network",
            "front",
            "--network-alias",
            "web",
        ],
        SERVE,
    );
    let ip = ip_of(&env, &srv);
    let subnet = inspect(&env, "front")["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, err) = env.sh(
        &["--net", "front"],
        "cat /etc/resolv.conf; for n in api web api-host API; do echo | nc $n 8000; done; \
         nslookup web 127.0.0.11",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("nameserver 127.0.0.11\noptions ndots:0\n"),
        "{out}"
    );
    assert_eq!(out.matches("pong").count(), 4, "{out}{err}");
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    assert!(
        subnet.starts_with("10.") || subnet.starts_with("192.168."),
        "{subnet}"
    );
    // Another network: no name, no route through.
    let (code, out, _) = env.sh(
        &["--network", "back"],
        &format!(
            "nslookup api 127.0.0.11 >/dev/null 2>&1 && echo RESOLVED; \
             echo | nc -w 2 {ip} 8000 || echo blocked"
        ),
    );
    assert_eq!(code, 0);
    assert_eq!(out, "blocked\n");
    // The default bridge neither.
    let (_, out, _) = env.sh(&[], &format!("echo | nc -w 2 {ip} 8000 || echo blocked"));
    assert_eq!(out, "blocked\n");
    // `network inspect` lists the container.
    let doc = inspect(&env, "front");
    assert_eq!(doc["Containers"][&srv]["Name"], "api");
    assert_eq!(doc["Driver"], "bridge");
}

#[test]
fn an_internal_network_has_no_route_out_and_an_open_one_has() {
    let env = env();
    let outside = Outside::new(0);
    let mut server = outside.tcp_server(9000);
    env.ok(&["network", "create", "--internal", "sealed"]);
    env.ok(&["network", "create", "open"]);
    let script = format!(
        "ip route; echo | nc -w 2 {} 9000 || echo unreachable",
        outside.addr
    );
    let (_, out, _) = env.sh(&["--network", "sealed"], &script);
    assert!(!out.contains("default"), "{out}");
    assert!(out.ends_with("unreachable\n"), "{out}");
    assert!(inspect(&env, "sealed")["Internal"].as_bool().unwrap());
    // The same through an open network: forwarded and masqueraded.
    let mut answer = String::new();
    for _ in 0..20 {
        answer = env.sh(&["--network", "open"], &script).1;
        if answer.contains("from-outside") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(answer.contains("default via"), "{answer}");
    assert!(answer.contains("from-outside"), "{answer}");
}

#[test]
fn the_embedded_dns_server_forwards_other_names_to_the_upstream_resolver() {
    let env = env();
    let outside = Outside::new(1);
    let count = dns_responder(outside.dns_socket(), Ipv4Addr::new(192, 0, 2, 123));
    env.ok(&["network", "create", "dnsnet"]);
    let (code, out, err) = env.sh(
        &[
            "--network",
            "dnsnet",
            "--dns",
            &outside.addr,
            "--dns-search",
            "example.org",
        ],
        "cat /etc/resolv.conf; nslookup far.example 127.0.0.11",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("search example.org\nnameserver 127.0.0.11\n"),
        "{out}"
    );
    assert!(out.contains("Address: 192.0.2.123"), "{out}");
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // On an internal network nothing is forwarded: the upstream hears nothing more.
    env.ok(&["network", "create", "--internal", "dnsint"]);
    let before = count.load(std::sync::atomic::Ordering::SeqCst);
    let (_, out, _) = env.sh(
        &["--network", "dnsint", "--dns", &outside.addr],
        "nslookup far.example 127.0.0.11 || echo failed",
    );
    assert!(out.ends_with("failed\n"), "{out}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), before);
}

#[test]
fn links_give_hosts_entries_and_dockers_environment() {
    let env = env();
    let db = env.detach(
        &["--name", "db", "--expose", "5432", "-e", "SECRET=s3"],
        "sleep 60",
    );
    let ip = ip_of(&env, &db);
    let (code, out, err) = env.sh(
        &["--name", "web", "--link", "db:store"],
        "cat /etc/hosts; env | sort",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{ip}\tstore {} db\n", &db[..12])),
        "{out}"
    );
    for want in [
        format!("STORE_PORT=tcp://{ip}:5432"),
        format!("STORE_PORT_5432_TCP=tcp://{ip}:5432"),
        format!("STORE_PORT_5432_TCP_ADDR={ip}"),
        "STORE_PORT_5432_TCP_PORT=5432".to_owned(),
        "STORE_PORT_5432_TCP_PROTO=tcp".to_owned(),
        "STORE_NAME=/web/store".to_owned(),
        "STORE_ENV_SECRET=s3".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing in {out}");
    }
    // A stopped container cannot be linked to.
    env.ok(&["rm", "-f", "db"]);
    let out = env.berth(&["run", "--rm", "--link", "db", "bb:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn network_container_mode_shares_the_other_containers_namespace() {
    let env = env();
    let srv = env.detach(&["--name", "owner"], SERVE);
    let (code, out, err) = env.sh(
        &["--network", "container:owner"],
        "hostname; echo | nc 127.0.0.1 8000",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}\npong\n", &srv[..12]));
    // Docker's refusals.
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "-p",
        "80",
        "bb:1",
        "true",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("conflicting options"));
}

#[test]
fn ports_are_published_from_a_user_network_and_dns_flags_apply_on_the_default_bridge() {
    let env = env();
    env.ok(&["network", "create", "--subnet", "192.168.250.0/24", "pub"]);
    let id = env.detach(
        &["--network", "pub", "-p", "127.0.0.1::80"],
        "httpd -f -p 80 -h /www",
    );
    assert!(ip_of(&env, &id).starts_with("192.168.250."));
    let port = env.ok(&["port", &id, "80"]);
    let addr = port.trim().to_owned();
    let mut body = String::new();
    for _ in 0..30 {
        if let Ok(r) = ureq::get(&format!("http://{addr}/index.html")).call() {
            body = r.into_string().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(body, "hello from a user network\n");
    let (code, out, err) = env.sh(
        &[
            "--dns",
            "192.0.2.1",
            "--dns-search",
            "example.org",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "box:192.0.2.7",
            "--add-host",
            "gw:host-gateway",
            "--ulimit",
            "nofile=1024:2048",
        ],
        "cat /etc/resolv.conf /etc/hosts; ulimit -n; ulimit -Hn",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("search example.org\nnameserver 192.0.2.1\noptions ndots:2\n"),
        "{out}"
    );
    assert!(out.contains("192.0.2.7\tbox\n"), "{out}");
    assert!(out.contains("\tgw\n"), "{out}");
    assert!(out.ends_with("1024\n2048\n"), "{out}");
}

#[test]
fn network_rm_is_refused_while_in_use_and_leaves_nothing_behind() {
    let env = env();
    let id = env.ok(&["network", "create", "--label", "team=a", "gone"]);
    let id = id.trim();
    let bridge = bridge_of(&env, "gone");
    let c = env.detach(&["--network", "gone"], "sleep 60");
    let out = env.berth(&["network", "rm", "gone"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "error: Error response from daemon: error while removing network: network gone id \
             {id} has active endpoints"
        )
    );
    let out = env.berth(&["network", "rm", "bridge"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("bridge is a pre-defined network and cannot be removed"));
    env.ok(&["rm", "-f", &c]);
    assert_eq!(env.ok(&["network", "rm", "gone"]), "gone\n");
    let links = run(Command::new("ip").args(["-br", "link"]));
    assert!(!links.contains(&bridge), "{links}");
    for table in ["filter", "nat"] {
        let rules = run(Command::new("iptables").args(["-t", table, "-S"]));
        assert!(!rules.contains(&bridge), "{rules}");
    }
    assert!(!std::path::Path::new(&format!("/run/berth/network/{bridge}.json")).exists());
    assert!(!env.ok(&["network", "ls"]).contains("gone"));
    // prune takes unused networks only.
    env.ok(&["network", "create", "unused"]);
    let out = env.ok(&["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\nunused\n\n");
}

#[test]
fn network_ls_has_dockers_shape() {
    let env = env();
    env.ok(&["network", "create", "shape"]);
    let ls = env.ok(&["network", "ls"]);
    let mut lines = ls.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(names, ["bridge", "host", "none", "shape"]);
    assert!(rows.iter().all(|r| r[0].len() == 12 && r[3] == "local"));
    let q = env.ok(&[
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        "type=custom",
    ]);
    assert_eq!(q.trim().len(), 64);
    let f = env.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}}",
        "-f",
        "driver=null",
    ]);
    assert_eq!(f, "none null\n");
    if Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let docker = run(Command::new("docker").args(["network", "ls"]));
        let dh: Vec<&str> = docker
            .lines()
            .next()
            .unwrap()
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(header, dh);
        let predefined = |s: &str| -> Vec<String> {
            s.lines()
                .skip(1)
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                .filter(|l| {
                    ["bridge ", "host ", "none "]
                        .iter()
                        .any(|p| l.starts_with(p))
                })
                .collect()
        };
        assert_eq!(predefined(&ls), predefined(&docker));
    }
}

#[test]
fn network_connect_and_disconnect_change_a_running_containers_networks() {
    let env = env();
    env.ok(&["network", "create", "first"]);
    env.ok(&["network", "create", "second"]);
    let srv = env.detach(&["--name", "svc", "--network", "first"], SERVE);
    let resolves = "nslookup svc 127.0.0.11 >/dev/null 2>&1 && echo RESOLVED || echo unknown";
    let (_, out, _) = env.sh(&["--network", "second"], resolves);
    assert_eq!(out, "unknown\n");

    assert_eq!(
        env.ok(&["network", "connect", "--alias", "svc2", "second", "svc"]),
        ""
    );
    let conn = env.state(&srv)["NetworkSettings"]["Connected"][0].clone();
    assert_eq!(
        (&conn["Network"], &conn["Interface"]),
        (&serde_json::json!("second"), &serde_json::json!("eth1"))
    );
    let ip2 = conn["IPAddress"].as_str().unwrap().to_owned();
    let host_end = conn["HostInterface"].as_str().unwrap().to_owned();
    let networks = env.ok(&[
        "inspect",
        "-f",
        "{{range $n, $e := .NetworkSettings.Networks}}{{$n}}={{$e.IPAddress}} {{end}}",
        "svc",
    ]);
    assert!(networks.contains(&format!("second={ip2} ")), "{networks}");
    assert!(networks.starts_with("first="), "{networks}");
    // The container has the interface; `second`'s containers reach it by name and alias over
    // TCP, at its address there; its first network still works.
    let out = env.ok(&["exec", "svc", "ip", "-4", "addr", "show", "eth1"]);
    assert!(out.contains(&format!("inet {ip2}/")), "{out}");
    let (code, out, err) = env.sh(
        &["--network", "second"],
        "for n in svc svc2; do echo | nc -w 5 $n 8000; done; nslookup svc 127.0.0.11",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("pong").count(), 2, "{out}{err}");
    assert!(out.contains(&format!("Address: {ip2}")), "{out}");
    let (_, out, _) = env.sh(&["--network", "first"], "echo | nc -w 5 svc 8000");
    assert_eq!(out, "pong\n");
    // Docker's refusals.
    let err = |args: &[&str]| {
        let out = env.berth(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&out.stderr).trim().to_owned()
    };
    assert_eq!(
        err(&["network", "connect", "second", "svc"]),
        "error: Error response from daemon: endpoint with name svc already exists in network second"
    );
    assert!(err(&["network", "rm", "second"]).contains("has active endpoints"));
    assert!(
        err(&["network", "disconnect", "first", "svc"]).contains("the network it was created with")
    );

    assert_eq!(env.ok(&["network", "disconnect", "second", "svc"]), "");
    let (_, out, _) = env.sh(
        &["--network", "second"],
        &format!("{resolves}; echo | nc -w 2 {ip2} 8000 || echo unreachable"),
    );
    assert_eq!(out, "unknown\nunreachable\n");
    let links = run(Command::new("ip").args(["-br", "link"]));
    assert!(!links.contains(&host_end), "{links}");
    assert_eq!(
        err(&["network", "disconnect", "second", "svc"]),
        format!(
            "error: Error response from daemon: container {srv} is not connected to network second"
        )
    );
    assert_eq!(env.ok(&["network", "rm", "second"]), "second\n");
    // Connected again, the container's exit takes the interface and the address along.
    env.ok(&["network", "create", "third"]);
    env.ok(&["network", "connect", "third", "svc"]);
    env.ok(&["rm", "-f", "svc"]);
    assert_eq!(env.ok(&["network", "rm", "third"]), "third\n");
}

#[test]
fn a_connected_network_resolves_names_and_comes_back_after_a_restart() {
    let env = env();
    env.ok(&["network", "create", "home"]);
    env.ok(&["network", "create", "extra"]);
    env.detach(&["--name", "peer", "--network", "extra"], SERVE);
    // Exits with 3 once /dev/shm/stop exists; /dev/shm is new at every start.
    let app = env.detach(
        &[
            "--name",
            "app",
            "--network",
            "home",
            "--restart",
            "on-failure:2",
        ],
        "while [ ! -e /dev/shm/stop ]; do sleep 0.1; done; exit 3",
    );
    env.ok(&["network", "connect", "extra", "app"]);
    let ip = env.state(&app)["NetworkSettings"]["Connected"][0]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its embedded DNS server answers names on the connected network too.
    let reach = "nslookup peer 127.0.0.11 >/dev/null && echo | nc -w 5 peer 8000";
    assert_eq!(env.ok(&["exec", "app", "sh", "-c", reach]), "pong\n");

    // Its program exits; the restart policy starts it again, on both networks, at the same
    // address on the connected one.
    env.ok(&["exec", "app", "touch", "/dev/shm/stop"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let st = env.state(&app);
        if st["RestartCount"] == 1
            && st["Status"] == "running"
            && !st["Restarting"].as_bool().unwrap_or(false)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no restart: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = env.ok(&["exec", "app", "ip", "-4", "addr", "show", "eth1"]);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    assert_eq!(env.ok(&["exec", "app", "sh", "-c", reach]), "pong\n");
    let (_, out, _) = env.sh(&["--network", "extra"], "nslookup app 127.0.0.11");
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    env.ok(&["rm", "-f", "app", "peer"]);
    env.ok(&["network", "rm", "home", "extra"]);
}

#[test]
fn network_connect_is_kept_across_starts_and_takes_containers_that_do_not_run() {
    let env = env();
    env.ok(&["network", "create", "base"]);
    env.ok(&["network", "create", "more"]);
    env.ok(&["network", "create", "spare"]);
    // Connected before it ever ran: Docker keeps the request and connects it at start.
    let out = env.berth(&[
        "create",
        "--name",
        "late",
        "--network",
        "base",
        "bb:1",
        "sh",
        "-c",
        SERVE,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        env.ok(&["network", "connect", "--alias", "tardy", "more", "late"]),
        ""
    );
    let networks = || {
        env.ok(&[
            "inspect",
            "-f",
            "{{range $n, $e := .NetworkSettings.Networks}}{{$n}}=[{{$e.IPAddress}}] {{end}}",
            "late",
        ])
    };
    assert_eq!(networks().trim(), "base=[] more=[]");
    env.ok(&["start", "late"]);
    let out = env.ok(&["exec", "late", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(out.contains("inet "), "{out}");
    // `more`'s containers reach it by name and alias.
    let (code, out, err) = env.sh(
        &["--network", "more"],
        "for n in late tardy; do echo | nc -w 5 $n 8000; done",
    );
    assert_eq!((code, out.matches("pong").count()), (0, 2), "{out}{err}");
    assert!(networks().contains("more=[1"), "{}", networks());

    // Stopped and started again (a new owner, new addresses): still on both networks.
    env.ok(&["stop", "-t", "1", "late"]);
    assert_eq!(networks().trim(), "base=[] more=[]");
    env.ok(&["start", "late"]);
    let out = env.ok(&["exec", "late", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(out.contains("inet "), "{out}");
    let (_, out, _) = env.sh(&["--network", "more"], "echo | nc -w 5 late 8000");
    assert_eq!(out, "pong\n");

    // Taken off while it does not run: not connected at the next start.
    env.ok(&["stop", "-t", "1", "late"]);
    assert_eq!(env.ok(&["network", "disconnect", "more", "late"]), "");
    env.ok(&["start", "late"]);
    let out = env.ok(&["exec", "late", "ip", "-o", "link"]);
    assert!(!out.contains("eth1"), "{out}");
    assert_eq!(networks().trim().matches('=').count(), 1, "{}", networks());

    // While it runs, interface numbers are reused, never doubled: eth1 and eth2, eth1 goes,
    // the next one takes eth1 again.
    env.ok(&["network", "connect", "more", "late"]);
    env.ok(&["network", "connect", "spare", "late"]);
    env.ok(&["network", "disconnect", "more", "late"]);
    env.ok(&["network", "connect", "more", "late"]);
    let out = env.ok(&["exec", "late", "ip", "-o", "link"]);
    assert!(out.contains("eth1") && out.contains("eth2"), "{out}");
    let (_, out, _) = env.sh(&["--network", "more"], "echo | nc -w 5 late 8000");
    assert_eq!(out, "pong\n");
    let (_, out, _) = env.sh(&["--network", "spare"], "echo | nc -w 5 late 8000");
    assert_eq!(out, "pong\n");

    // A requested network removed while the container is stopped: its start says so.
    env.ok(&["stop", "-t", "1", "late"]);
    assert_eq!(env.ok(&["network", "rm", "spare"]), "spare\n");
    let out = env.berth(&["start", "late"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("network spare not found"), "{err}");
    // Taking the request off the removed network lets it start again.
    assert_eq!(env.ok(&["network", "disconnect", "spare", "late"]), "");
    env.ok(&["start", "late"]);
    let out = env.ok(&["exec", "late", "ip", "-o", "link"]);
    assert!(out.contains("eth1") && !out.contains("eth2"), "{out}");
    env.ok(&["network", "disconnect", "more", "late"]);
    env.ok(&["rm", "-f", "late"]);
    env.ok(&["network", "rm", "base", "more"]);
}

#[test]
fn ip_gives_a_fixed_address_on_a_user_network() {
    let env = env();
    env.ok(&["network", "create", "--subnet", "192.168.251.0/24", "fixed"]);
    let id = env.detach(
        &[
            "--name",
            "pinned",
            "--network",
            "fixed",
            "--ip",
            "192.168.251.77",
        ],
        SERVE,
    );
    let addr = || env.ok(&["exec", "pinned", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr().contains("inet 192.168.251.77/24"), "{}", addr());
    // Another container cannot take it; others reach it there and by name.
    let (code, _, err) = env.sh(&["--network", "fixed", "--ip", "192.168.251.77"], "true");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("Address already in use"), "{err}");
    let (_, out, _) = env.sh(
        &["--network", "fixed"],
        "echo | nc -w 5 192.168.251.77 8000; nslookup pinned 127.0.0.11",
    );
    assert!(
        out.starts_with("pong\n") && out.contains("Address: 192.168.251.77"),
        "{out}"
    );
    // Kept across a stop and a start.
    env.ok(&["stop", "-t", "1", "pinned"]);
    env.ok(&["start", "pinned"]);
    assert!(addr().contains("inet 192.168.251.77/24"), "{}", addr());
    let shown = env.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Networks.fixed.IPAMConfig.IPv4Address}}",
        &id,
    ]);
    assert_eq!(shown.trim(), "192.168.251.77 192.168.251.77");
    // Docker's refusals.
    for (flags, want) in [
        (
            &["--ip", "192.168.251.78"][..],
            "supported on user defined networks only",
        ),
        (
            &["--network", "fixed", "--ip", "10.9.9.9"][..],
            "no configured subnet or ip-range contain the IP address 10.9.9.9",
        ),
        (
            &["--network", "fixed", "--ip", "192.168.251.1"][..],
            "no configured subnet or ip-range contain the IP address 192.168.251.1",
        ),
        (
            &["--network", "fixed", "--ip", "not-an-ip"][..],
            "invalid IPv4 address: not-an-ip",
        ),
    ] {
        let (code, _, err) = env.sh(flags, "true");
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // A subnet Berth picked is not one the user configured: Docker refuses `--ip` there.
    env.ok(&["network", "create", "picked"]);
    let (code, _, err) = env.sh(&["--network", "picked", "--ip", "10.90.0.9"], "true");
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("supported only when connecting to networks with user configured subnets"),
        "{err}"
    );
    env.ok(&["network", "rm", "picked"]);
    env.ok(&["rm", "-f", "pinned"]);
    env.ok(&["network", "rm", "fixed"]);
}
