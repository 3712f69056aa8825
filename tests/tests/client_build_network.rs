//! The network of `berth build`'s RUN steps, end to end as root: the default bridge (as
//! Docker's builder gives: `eth0` with an address on `berth0`, a default route, traffic to the
//! host's addresses), `--network none` and `RUN --network=none` (only `lo`), `--network host`
//! (the host's interfaces), an unknown mode refused, and no address or veth left behind.

mod build_common;

use build_common::*;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};

/// A TCP server on a test address of the host that answers every connection with `reply`.
struct Server {
    addr: std::net::SocketAddr,
    _ip: berth_tests::TestAddr,
}

impl Server {
    fn start(reply: &'static str) -> Self {
        let ip = berth_tests::TestAddr::new();
        let listener = TcpListener::bind((ip.ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(mut c) = c else { return };
                let _ = c.write_all(reply.as_bytes());
            }
        });
        Self { addr, _ip: ip }
    }
}

/// The RUN output lines of a plain build log that start with `tag`.
fn tagged(log: &str, tag: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// The default bridge's address allocations.
fn allocations() -> serde_json::Map<String, serde_json::Value> {
    std::fs::read_to_string("/run/berth/network/berth0.json")
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["Allocations"].as_object().cloned())
        .unwrap_or_default()
}

/// Asserts that the RUN containers of a build log (`---> Running in ID`) hold no address on the
/// default bridge and that their veth pairs are gone.
fn assert_nothing_left(log: &str) {
    let ids = tagged(log, " ---> Running in");
    assert!(!ids.is_empty(), "{log}");
    let held = std::fs::read_to_string("/run/berth/network/berth0.json").unwrap_or_default();
    for id in &ids {
        assert!(
            !held.contains(id.as_str()),
            "{id} still has an address: {held}"
        );
        let veth = format!("/sys/class/net/veth{}", &id[..11]);
        // The kernel removes the pair with the namespace, shortly after the last process.
        let gone = (0..100).any(|_| {
            let gone = !std::path::Path::new(&veth).exists();
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            gone
        });
        assert!(gone, "{veth} is still there");
    }
}

#[test]
fn run_steps_are_on_the_bridge_by_default_and_reach_the_host() {
    let env = env();
    let server = Server::start("from-the-host\n");
    let ctx = env.tmp.path().join("ctx");
    let dockerfile = format!(
        "FROM bb:1\n\
         RUN echo \"IFACES $(ls /sys/class/net | tr '\\n' ' ')\" && \
             echo \"ROUTE $(ip route | grep default)\" && \
             echo \"HOSTS $(grep -c \"$(hostname)\" /etc/hosts)\"\n\
         RUN nc {} {} </dev/null > /got.txt && echo \"GOT $(cat /got.txt)\"\n\
         CMD [\"cat\", \"/got.txt\"]\n",
        server.addr.ip(),
        server.addr.port()
    );
    write(&ctx, &[("Dockerfile", &dockerfile)]);
    let log = plain(&env, &ctx, &["--no-cache", "-t", "net:1"]);
    let ifaces = tagged(&log, "IFACES");
    assert_eq!(ifaces, ["eth0 lo"], "{log}");
    let route = tagged(&log, "ROUTE");
    assert_eq!(route.len(), 1, "{log}");
    assert!(
        route[0].starts_with("default via ") && route[0].contains("dev eth0"),
        "{log}"
    );
    // The RUN container's own address is in its /etc/hosts, beside 127.0.0.1.
    assert_eq!(tagged(&log, "HOSTS"), ["2"], "{log}");
    assert_eq!(tagged(&log, "GOT"), ["from-the-host"], "{log}");
    // The answer is in the image.
    let out = env.ok(&["run", "--rm", "--network", "none", "net:1"]);
    assert_eq!(out, "from-the-host\n");
    assert_nothing_left(&log);
}

#[test]
fn network_none_and_run_network_none_have_only_loopback() {
    let env = env();
    let server = Server::start("unreachable\n");
    let ctx = env.tmp.path().join("ctx");
    let dockerfile = format!(
        "FROM bb:1\n\
         RUN echo \"IFACES $(ls /sys/class/net | tr '\\n' ' ')\"\n\
         RUN echo \"NC $(nc -w 2 {} {} </dev/null 2>&1 || echo refused)\"\n",
        server.addr.ip(),
        server.addr.port()
    );
    write(&ctx, &[("Dockerfile", &dockerfile)]);
    let log = plain(&env, &ctx, &["--no-cache", "--network", "none"]);
    assert_eq!(tagged(&log, "IFACES"), ["lo"], "{log}");
    assert_eq!(
        tagged(&log, "NC"),
        ["nc: can't connect to remote host (".to_owned()
            + &server.addr.ip().to_string()
            + "): Network is unreachable"],
        "{log}"
    );

    // `RUN --network=none` on a default (bridge) build.
    let ctx2 = env.tmp.path().join("ctx2");
    write(
        &ctx2,
        &[(
            "Dockerfile",
            "FROM bb:1\n\
             RUN --network=none echo \"NONE $(ls /sys/class/net | tr '\\n' ' ')\"\n\
             RUN echo \"DEFAULT $(ls /sys/class/net | tr '\\n' ' ')\"\n",
        )],
    );
    let log = plain(&env, &ctx2, &["--no-cache"]);
    assert_eq!(tagged(&log, "NONE"), ["lo"], "{log}");
    assert_eq!(tagged(&log, "DEFAULT"), ["eth0 lo"], "{log}");
}

#[test]
fn network_host_sees_the_hosts_interfaces() {
    let env = env();
    let server = Server::start("host\n");
    let ctx = env.tmp.path().join("ctx");
    let dockerfile = format!(
        "FROM bb:1\n\
         RUN ip -o addr | grep -q ' {0}/' && echo \"HASADDR yes\"\n\
         RUN echo \"GOT $(nc {0} {1} </dev/null)\"\n",
        server.addr.ip(),
        server.addr.port()
    );
    write(&ctx, &[("Dockerfile", &dockerfile)]);
    let log = plain(&env, &ctx, &["--no-cache", "--network", "host"]);
    assert_eq!(tagged(&log, "HASADDR"), ["yes"], "{log}");
    assert_eq!(tagged(&log, "GOT"), ["host"], "{log}");
}

#[test]
fn an_unknown_network_mode_is_refused_and_addresses_are_given_back() {
    let env = env();
    let ctx = env.tmp.path().join("ctx");
    write(&ctx, &[("Dockerfile", "FROM bb:1\nRUN true\n")]);
    let out = build(&env, &["--network", "container:x", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network mode `container:x` is not supported by berth build"),
        "{err}"
    );

    // A failing RUN on the bridge gives its address back too.
    let ctx2 = env.tmp.path().join("ctx2");
    write(
        &ctx2,
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN hostname > /h && cat /etc/hosts && grep -q \"$(hostname)\" /etc/hosts && exit 3\n",
        )],
    );
    let out = build(&env, &["--no-cache", ctx2.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    // The address the failed step had (in its /etc/hosts) is free again, its veth gone.
    let addr: Ipv4Addr = log
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback())
        .unwrap_or_else(|| panic!("no bridge address in /etc/hosts: {log}"));
    let held = allocations();
    assert!(
        !held.contains_key(&addr.to_string()),
        "{addr} is still allocated: {held:?}"
    );
    assert_nothing_left(&log);
}
