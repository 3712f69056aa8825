//! Our iptables rules, in our own chains only (Docker's `DOCKER*` chains, its rules and the
//! `FORWARD` policy are never touched):
//!
//! ```text
//! filter FORWARD     -j BERTH-FORWARD   the default bridge `berth0` (rules below, reloaded whole)
//!                    -j BERTH-NETWORKS  one jump per user network:  -j BERTH-N-<bridge>
//! nat    POSTROUTING -j BERTH-POSTROUTING  MASQUERADE for berth0's subnet
//!                    -j BERTH-NETWORKS     -j BERTH-N-<bridge>: MASQUERADE for its subnet
//! ```
//!
//! Each bridge's chain accepts traffic inside the bridge, drops traffic from it to any other
//! Berth bridge (`-o berth+`: every Berth bridge is named `berth…`), which is what isolates
//! networks from one another like Docker's `DOCKER-ISOLATION-STAGE-*`, accepts replies into it
//! and new traffic out of it. An `--internal` network's chain drops everything leaving or
//! entering the bridge instead, and has no MASQUERADE. A chain is (re)loaded with
//! `iptables-restore --noflush`, which replaces that chain's rules and nothing else; jumps are
//! added with `iptables -C || -A`, so they exist once.

use std::process::{Command, Stdio};

use super::{NetworkError, Result, Subnet, FORWARD_CHAIN, POSTROUTING_CHAIN};

/// The chain (in `filter` and `nat`) jumping to each user network's chain.
pub const NETWORKS_CHAIN: &str = "BERTH-NETWORKS";

/// The wildcard matching every Berth bridge (`berth0` and the user networks' `berth-…`).
pub const BRIDGE_WILDCARD: &str = "berth+";

/// The chain of the user network whose bridge is `bridge`.
#[must_use]
pub fn network_chain(bridge: &str) -> String {
    format!("BERTH-N-{bridge}")
}

/// The default bridge's rules, in `iptables-restore` format; loading it with `--noflush`
/// replaces our chains' rules and nothing else.
#[must_use]
pub fn iptables_rules(bridge: &str, subnet: Subnet) -> String {
    format!(
        "*filter\n\
         :{FORWARD_CHAIN} - [0:0]\n\
         -A {FORWARD_CHAIN} -i {bridge} -o {bridge} -j ACCEPT\n\
         -A {FORWARD_CHAIN} -i {bridge} -o {BRIDGE_WILDCARD} -j DROP\n\
         -A {FORWARD_CHAIN} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A {FORWARD_CHAIN} -i {bridge} -j ACCEPT\n\
         COMMIT\n\
         *nat\n\
         :{POSTROUTING_CHAIN} - [0:0]\n\
         -A {POSTROUTING_CHAIN} -s {subnet} ! -o {bridge} -j MASQUERADE\n\
         COMMIT\n"
    )
}

/// A user network's rules (its own chain in `filter` and `nat`), in `iptables-restore`
/// format.
#[must_use]
pub fn network_rules(bridge: &str, subnet: Subnet, internal: bool) -> String {
    let chain = network_chain(bridge);
    let mut out = format!(
        "*filter\n\
         :{chain} - [0:0]\n\
         -A {chain} -i {bridge} -o {bridge} -j ACCEPT\n\
         -A {chain} -i {bridge} -o {BRIDGE_WILDCARD} -j DROP\n"
    );
    if internal {
        out.push_str(&format!(
            "-A {chain} -i {bridge} -j DROP\n\
             -A {chain} -o {bridge} -j DROP\n"
        ));
    } else {
        out.push_str(&format!(
            "-A {chain} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A {chain} -i {bridge} -j ACCEPT\n"
        ));
    }
    out.push_str(&format!("COMMIT\n*nat\n:{chain} - [0:0]\n"));
    if !internal {
        out.push_str(&format!(
            "-A {chain} -s {subnet} ! -o {bridge} -j MASQUERADE\n"
        ));
    }
    out.push_str("COMMIT\n");
    out
}

/// Loads the default bridge's chains and makes sure `FORWARD`/`POSTROUTING` jump to them.
///
/// # Errors
/// iptables failed.
pub fn setup_default(bridge: &str, subnet: Subnet) -> Result<()> {
    run_iptables(
        "iptables-restore",
        &["-w", "--noflush"],
        Some(&iptables_rules(bridge, subnet)),
    )?;
    ensure_jump("filter", "FORWARD", FORWARD_CHAIN)?;
    ensure_jump("nat", "POSTROUTING", POSTROUTING_CHAIN)
}

/// Loads a user network's chains and the jumps to them.
///
/// # Errors
/// iptables failed.
pub fn setup_network(bridge: &str, subnet: Subnet, internal: bool) -> Result<()> {
    for table in ["filter", "nat"] {
        // Fails when it exists: fine.
        let _ = run_iptables("iptables", &["-w", "-t", table, "-N", NETWORKS_CHAIN], None);
    }
    run_iptables(
        "iptables-restore",
        &["-w", "--noflush"],
        Some(&network_rules(bridge, subnet, internal)),
    )?;
    ensure_jump("filter", "FORWARD", NETWORKS_CHAIN)?;
    ensure_jump("nat", "POSTROUTING", NETWORKS_CHAIN)?;
    let chain = network_chain(bridge);
    ensure_jump("filter", NETWORKS_CHAIN, &chain)?;
    ensure_jump("nat", NETWORKS_CHAIN, &chain)
}

/// Removes a user network's chains and the jumps to them; what is already gone is fine.
pub fn remove_network_rules(bridge: &str) {
    let chain = network_chain(bridge);
    for table in ["filter", "nat"] {
        while run_iptables(
            "iptables",
            &["-w", "-t", table, "-D", NETWORKS_CHAIN, "-j", &chain],
            None,
        )
        .is_ok()
        {}
        let _ = run_iptables("iptables", &["-w", "-t", table, "-F", &chain], None);
        let _ = run_iptables("iptables", &["-w", "-t", table, "-X", &chain], None);
    }
}

fn ensure_jump(table: &str, from: &str, to: &str) -> Result<()> {
    if run_iptables("iptables", &["-w", "-t", table, "-C", from, "-j", to], None).is_err() {
        run_iptables("iptables", &["-w", "-t", table, "-A", from, "-j", to], None)?;
    }
    Ok(())
}

fn run_iptables(program: &str, args: &[&str], input: Option<&str>) -> Result<()> {
    use std::io::Write as _;
    let command = format!("{program} {}", args.join(" "));
    let fail = |stderr: String| NetworkError::Iptables {
        command: command.clone(),
        stderr,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn iptables_rules_stay_in_our_chains() {
        let rules = iptables_rules("berth0", subnet("10.87.0.0/16"));
        for line in rules.lines().filter(|l| l.starts_with("-A")) {
            assert!(
                line.starts_with("-A BERTH-FORWARD ") || line.starts_with("-A BERTH-POSTROUTING "),
                "{line}"
            );
        }
        assert!(rules.contains("-A BERTH-POSTROUTING -s 10.87.0.0/16 ! -o berth0 -j MASQUERADE"));
        // Isolation from user networks comes before the accept of everything leaving.
        let drop = rules.find("-i berth0 -o berth+ -j DROP").unwrap();
        assert!(drop < rules.find("-A BERTH-FORWARD -i berth0 -j ACCEPT").unwrap());
        assert!(!rules.contains("DOCKER"));
    }

    #[test]
    fn user_networks_are_isolated_and_internal_ones_closed() {
        let open = network_rules("berth-0123abcd", subnet("10.90.0.0/16"), false);
        let chain = "BERTH-N-berth-0123abcd";
        assert!(chain.len() <= 28);
        for line in open.lines().filter(|l| l.starts_with("-A")) {
            assert!(line.starts_with(&format!("-A {chain} ")), "{line}");
        }
        assert!(open.contains("-i berth-0123abcd -o berth+ -j DROP"));
        assert!(open.contains("-s 10.90.0.0/16 ! -o berth-0123abcd -j MASQUERADE"));
        let internal = network_rules("berth-0123abcd", subnet("10.90.0.0/16"), true);
        assert!(!internal.contains("MASQUERADE"));
        assert!(!internal.contains("-i berth-0123abcd -j ACCEPT"));
        assert!(internal.contains("-o berth-0123abcd -j DROP"));
    }
}
