//! `-p/--publish`, `-P/--publish-all` and `--expose`, parsed as Docker does
//! (`go-connections/nat.ParsePortSpec`), and `berth port`'s lines.
//!
//! `-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, where either port may be a range
//! `START-END`: equal-length ranges map one to one; a host range for a single container port
//! is the set of host ports to pick from; no host port (or `0`) means a free one.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A transport protocol Docker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// `tcp` (the default).
    Tcp,
    /// `udp`.
    Udp,
    /// `sctp` (parsed; publishing it is refused like Docker's userland proxy does).
    Sctp,
}

impl Proto {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Self::Tcp),
            "udp" => Some(Self::Udp),
            "sctp" => Some(Self::Sctp),
            _ => None,
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        })
    }
}

/// One container port to publish, as asked (Docker's `HostConfig.PortBindings` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    /// The container's port.
    pub container_port: u16,
    /// Its protocol.
    pub proto: Proto,
    /// Host address; `None`: every address (`0.0.0.0` and `::`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// First and last host port to try; `(0, 0)`: a free one.
    pub host_ports: (u16, u16),
}

impl PortBinding {
    /// `80/tcp`.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }
}

/// `START` or `START-END` (Docker's `ParsePortRange`); `None` when malformed or reversed.
fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

/// Docker's `SplitProtoPort`: `80/udp` -> (`udp`, `80`); no protocol is `tcp`.
fn split_proto(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or_default();
    if raw.is_empty() || port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

/// A `-p` or `--expose` value Docker refuses (its messages).
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    /// The host IP of `-p`.
    #[error("invalid IP address: {0}")]
    Ip(String),
    /// `-p` without a container port.
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    /// The container port (or range) of `-p`.
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    /// The host port (or range) of `-p`.
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    /// Container and host ranges of different lengths.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    Ranges {
        /// The container range.
        container: String,
        /// The host range.
        host: String,
    },
    /// Neither `tcp`, `udp` nor `sctp`.
    #[error("invalid proto: {0}")]
    Proto(String),
    /// `--expose` with a host part.
    #[error("invalid port format for --expose: {0}")]
    ExposeFormat(String),
    /// `--expose` with a bad port or range.
    #[error("invalid range format for --expose: {0}")]
    ExposeRange(String),
}

/// Parses one `-p` value into one binding per container port.
///
/// # Errors
/// Docker's messages: `invalid containerPort: X`, `invalid hostPort: X`, `invalid IP address:
/// X`, `invalid proto: X`, `invalid ranges specified for container and host Ports: A and B`.
pub fn parse_publish(raw: &str) -> Result<Vec<PortBinding>, PortsError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_owned(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto(container);
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .map_or(ip.clone(), str::to_owned);
    let host_ip = if ip.is_empty() {
        None
    } else {
        Some(
            ip.parse::<IpAddr>()
                .map_err(|_| PortsError::Ip(ip.clone()))?,
        )
    };
    if container.is_empty() {
        return Err(PortsError::NoPort(raw.to_owned()));
    }
    let (start, end) =
        parse_range(container).ok_or_else(|| PortsError::ContainerPort(container.to_owned()))?;
    let (host_start, host_end) = if host.is_empty() {
        (0, 0)
    } else {
        parse_range(host).ok_or_else(|| PortsError::HostPort(host.to_owned()))?
    };
    if !host.is_empty() && end - start != host_end - host_start && end != start {
        return Err(PortsError::Ranges {
            container: container.to_owned(),
            host: host.to_owned(),
        });
    }
    let proto = Proto::parse(proto).ok_or_else(|| PortsError::Proto(proto.to_owned()))?;
    Ok((start..=end)
        .enumerate()
        .map(|(i, port)| {
            let i = u16::try_from(i).unwrap_or(0);
            let host_ports = if host.is_empty() {
                (0, 0)
            } else if start == end {
                (host_start, host_end)
            } else {
                (host_start + i, host_start + i)
            };
            PortBinding {
                container_port: port,
                proto,
                host_ip,
                host_ports,
            }
        })
        .collect())
}

/// `--expose PORT[/PROTO]` or a range: the exposed `port/proto` keys.
///
/// # Errors
/// Docker's `invalid port format for --expose: X`, `invalid range format for --expose: X` or
/// `invalid proto: X`.
pub fn parse_expose(raw: &str) -> Result<Vec<(u16, Proto)>, PortsError> {
    if raw.contains(':') {
        return Err(PortsError::ExposeFormat(raw.to_owned()));
    }
    let (proto, port) = split_proto(raw);
    let (start, end) = parse_range(port).ok_or_else(|| PortsError::ExposeRange(raw.to_owned()))?;
    let proto = Proto::parse(proto).ok_or_else(|| PortsError::Proto(proto.to_owned()))?;
    Ok((start..=end).map(|p| (p, proto)).collect())
}

/// An image's `ExposedPorts` key (`80/tcp`, `53/udp`, `8080`), if well formed.
#[must_use]
pub fn parse_exposed_key(key: &str) -> Option<(u16, Proto)> {
    let (proto, port) = split_proto(key);
    Some((port.parse().ok()?, Proto::parse(proto)?))
}

/// Every binding of `-p`, then (`-P`) a random host port for each exposed port (the image's and
/// `--expose`'s) that `-p` does not publish.
///
/// # Errors
/// A malformed value.
pub fn bindings(
    publish: &[String],
    publish_all: bool,
    exposed: &[(u16, Proto)],
) -> Result<Vec<PortBinding>, PortsError> {
    let mut out = Vec::new();
    for p in publish {
        out.extend(parse_publish(p)?);
    }
    if publish_all {
        let mut exposed = exposed.to_vec();
        exposed.sort_unstable();
        exposed.dedup();
        for (port, proto) in exposed {
            if !out
                .iter()
                .any(|b| b.container_port == port && b.proto == proto)
            {
                out.push(PortBinding {
                    container_port: port,
                    proto,
                    host_ip: None,
                    host_ports: (0, 0),
                });
            }
        }
    }
    Ok(out)
}

/// Docker's "natural" order (`sortorder.NaturalLess`): digit runs compare as numbers.
#[must_use]
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let strip = |n: &[u8]| -> usize { n.iter().take_while(|c| **c == b'0').count() };
                let (ta, tb) = (&na[strip(na)..], &nb[strip(nb)..]);
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn b(port: u16, proto: Proto, ip: Option<&str>, host: (u16, u16)) -> PortBinding {
        PortBinding {
            container_port: port,
            proto,
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_ports: host,
        }
    }

    #[rstest]
    #[case("80", vec![b(80, Proto::Tcp, None, (0, 0))])]
    #[case("0:80", vec![b(80, Proto::Tcp, None, (0, 0))])]
    #[case(":80", vec![b(80, Proto::Tcp, None, (0, 0))])]
    #[case("8080:80", vec![b(80, Proto::Tcp, None, (8080, 8080))])]
    #[case("8080:80/udp", vec![b(80, Proto::Udp, None, (8080, 8080))])]
    #[case("127.0.0.1:8080:80/tcp", vec![b(80, Proto::Tcp, Some("127.0.0.1"), (8080, 8080))])]
    #[case("127.0.0.1::81", vec![b(81, Proto::Tcp, Some("127.0.0.1"), (0, 0))])]
    #[case("[::1]:8081:80", vec![b(80, Proto::Tcp, Some("::1"), (8081, 8081))])]
    #[case("::1:8081:80", vec![b(80, Proto::Tcp, Some("::1"), (8081, 8081))])]
    #[case("80/sctp", vec![b(80, Proto::Sctp, None, (0, 0))])]
    #[case("80/", vec![b(80, Proto::Tcp, None, (0, 0))])]
    #[case("8000-8001:80", vec![b(80, Proto::Tcp, None, (8000, 8001))])]
    #[case("9000-9001:90-91", vec![
        b(90, Proto::Tcp, None, (9000, 9000)),
        b(91, Proto::Tcp, None, (9001, 9001)),
    ])]
    #[case("80-81", vec![b(80, Proto::Tcp, None, (0, 0)), b(81, Proto::Tcp, None, (0, 0))])]
    fn publish_values_parse_like_docker(#[case] raw: &str, #[case] want: Vec<PortBinding>) {
        assert_eq!(parse_publish(raw).unwrap(), want);
    }

    #[rstest]
    #[case("abc", "invalid containerPort: abc")]
    #[case("99999", "invalid containerPort: 99999")]
    #[case("90-80", "invalid containerPort: 90-80")]
    #[case("80/xyz", "invalid proto: xyz")]
    #[case("a:80", "invalid hostPort: a")]
    #[case("65536:80", "invalid hostPort: 65536")]
    #[case("127.0.0.1:80", "invalid hostPort: 127.0.0.1")]
    #[case("1.2.3:80:80", "invalid IP address: 1.2.3")]
    #[case("/udp", "no port specified: /udp<empty>")]
    #[case(
        "8000-8001:80-82",
        "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
    )]
    fn bad_publish_values_get_dockers_message(#[case] raw: &str, #[case] want: &str) {
        assert_eq!(parse_publish(raw).unwrap_err().to_string(), want);
    }

    #[test]
    fn publish_all_adds_the_exposed_ports_not_published() {
        let exposed = [(80, Proto::Tcp), (53, Proto::Udp), (80, Proto::Tcp)];
        let all = bindings(&["8080:80".into()], true, &exposed).unwrap();
        assert_eq!(
            all,
            vec![
                b(80, Proto::Tcp, None, (8080, 8080)),
                b(53, Proto::Udp, None, (0, 0)),
            ]
        );
        assert_eq!(bindings(&[], false, &exposed).unwrap(), vec![]);
        assert_eq!(parse_exposed_key("53/udp"), Some((53, Proto::Udp)));
        assert_eq!(parse_exposed_key("8080"), Some((8080, Proto::Tcp)));
        assert_eq!(parse_exposed_key("x/tcp"), None);
        assert_eq!(
            parse_expose("7000-7001/udp").unwrap(),
            vec![(7000, Proto::Udp), (7001, Proto::Udp)]
        );
        assert_eq!(
            parse_expose("x").unwrap_err().to_string(),
            "invalid range format for --expose: x"
        );
    }

    #[test]
    fn natural_order_compares_numbers() {
        let mut v = vec![
            "9000/tcp -> 0.0.0.0:1",
            "53/udp -> [::]:5353",
            "80/tcp -> 0.0.0.0:18080",
            "53/udp -> 0.0.0.0:5353",
            "443/tcp -> 0.0.0.0:1",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "53/udp -> 0.0.0.0:5353",
                "53/udp -> [::]:5353",
                "80/tcp -> 0.0.0.0:18080",
                "443/tcp -> 0.0.0.0:1",
                "9000/tcp -> 0.0.0.0:1",
            ]
        );
    }
}
