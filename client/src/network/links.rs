//! `--link NAME[:ALIAS]`, Docker's legacy links: an `/etc/hosts` line for the linked container
//! (`IP\tALIAS HOSTNAME NAME`) and, on the default bridge, environment variables describing it
//! (moby's `daemon/links`: `ALIAS_PORT`, `ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]`,
//! `ALIAS_NAME=/<name>/<alias>`, `ALIAS_ENV_<var>` for its configured environment).

use super::peers::Peers;

/// A `--link` Docker refuses (its messages).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Not `NAME[:ALIAS]`.
    #[error("invalid argument \"{0}\" for \"--link\" flag: bad format for links: {0}")]
    Format(String),
    /// No such container.
    #[error("Error response from daemon: could not get container for {0}: No such container: {0}")]
    NoSuchContainer(String),
    /// The linked container does not run.
    #[error("Error response from daemon: Cannot link to a non running container: /{name} AS /{parent}/{alias}")]
    NotRunning {
        /// The linked container's name.
        name: String,
        /// The new container's name.
        parent: String,
        /// The link's alias.
        alias: String,
    },
    /// The linked container has no address on the default bridge.
    #[error("Error response from daemon: Cannot link to /{0}, as it does not belong to the default network")]
    NotOnDefaultBridge(String),
}

/// One resolved link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The `/etc/hosts` line.
    pub hosts_line: String,
    /// The environment.
    pub env: Vec<String>,
    /// Docker's `HostConfig.Links` form: `/db:/web/db`.
    pub record: String,
}

/// Resolves `raw` (`NAME[:ALIAS]`) for container `parent`.
///
/// # Errors
/// No such container, or it does not run or has no address on the default bridge (Docker's
/// messages).
pub fn resolve(peers: &dyn Peers, raw: &str, parent: &str) -> Result<Link, LinkError> {
    let (name, alias) = raw.split_once(':').unwrap_or((raw, raw));
    let name = name.strip_prefix('/').unwrap_or(name);
    if name.is_empty() || alias.is_empty() {
        return Err(LinkError::Format(raw.to_owned()));
    }
    let state = peers
        .find(name)
        .map_err(|_| LinkError::NoSuchContainer(name.to_owned()))?;
    if !state.running {
        return Err(LinkError::NotRunning {
            name: state.name,
            parent: parent.to_owned(),
            alias: alias.to_owned(),
        });
    }
    let net = state.network.clone().unwrap_or_default();
    let Some(ip) = net.ip_address else {
        return Err(LinkError::NotOnDefaultBridge(state.name));
    };
    let hostname = fs_err::read_to_string(state.dir.join("hostname"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut names = format!("{alias} {hostname}");
    if alias != state.name {
        names.push(' ');
        names.push_str(&state.name);
    }
    let child_env: Vec<String> = oci_spec::runtime::Spec::load(state.dir.join("config.json"))
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.env().clone()))
        .unwrap_or_default();
    Ok(Link {
        hosts_line: format!("{ip}\t{names}\n"),
        env: env(
            alias,
            &format!("/{parent}/{alias}"),
            &ip.to_string(),
            &net.exposed_ports,
            &child_env,
        ),
        record: format!("/{}:/{parent}/{alias}", state.name),
    })
}

/// moby's `Link.ToEnv` (without the `_START`/`_END` range variables).
#[must_use]
pub fn env(
    alias: &str,
    full_name: &str,
    ip: &str,
    exposed: &[String],
    child_env: &[String],
) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = exposed
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((port.parse().ok()?, proto.to_owned()))
        })
        .collect();
    ports.sort();
    let mut out = Vec::new();
    if let Some((port, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let p = proto.to_uppercase();
        out.push(format!("{prefix}_PORT_{port}_{p}={proto}://{ip}:{port}"));
        out.push(format!("{prefix}_PORT_{port}_{p}_ADDR={ip}"));
        out.push(format!("{prefix}_PORT_{port}_{p}_PORT={port}"));
        out.push(format!("{prefix}_PORT_{port}_{p}_PROTO={proto}"));
    }
    out.push(format!("{prefix}_NAME={full_name}"));
    for kv in child_env {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        // moby skips these two; HOSTNAME is not part of Docker's configured environment.
        if matches!(k, "HOME" | "PATH" | "HOSTNAME") {
            continue;
        }
        out.push(format!("{prefix}_ENV_{k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_environment_follows_moby() {
        let env = env(
            "my-db",
            "/web/my-db",
            "10.87.0.5",
            &["5432/tcp".into(), "53/udp".into()],
            &[
                "PATH=/bin".into(),
                "HOSTNAME=abc".into(),
                "PASSWORD=secret".into(),
            ],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=udp://10.87.0.5:53",
                "MY_DB_PORT_53_UDP=udp://10.87.0.5:53",
                "MY_DB_PORT_53_UDP_ADDR=10.87.0.5",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_5432_TCP=tcp://10.87.0.5:5432",
                "MY_DB_PORT_5432_TCP_ADDR=10.87.0.5",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PASSWORD=secret",
            ]
        );
    }
}
