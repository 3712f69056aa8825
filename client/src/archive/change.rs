//! `--change` instructions (`berth import -c 'CMD ["/bin/sh"]'`): the metadata subset of the
//! Dockerfile that Docker's `BuildFromConfig` accepts (CMD, ENTRYPOINT, ENV, EXPOSE,
//! HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), applied to an image's
//! `config` object. Messages follow Docker's wording. Variable expansion (`$VAR`) is not done.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Result of this module.
pub type Result<T> = std::result::Result<T, ChangeError>;

/// Why an instruction is refused (Docker's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// RUN, COPY, FROM, … cannot change a config.
    #[error("{instruction} is not a valid change command")]
    NotValid {
        /// Lowercased, as Docker prints it.
        instruction: String,
    },
    /// WORKDIR, USER, STOPSIGNAL.
    #[error("{instruction} requires exactly one argument")]
    ExactlyOne {
        /// Instruction.
        instruction: &'static str,
    },
    /// Anything that was given nothing.
    #[error("{instruction} requires at least one argument")]
    AtLeastOne {
        /// Instruction.
        instruction: &'static str,
    },
    /// `ENV KEY` alone.
    #[error("{instruction} must have two arguments")]
    TwoArguments {
        /// Instruction.
        instruction: &'static str,
    },
    /// `ENV A=1 B`.
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    NoEquals {
        /// The word without `=`.
        word: String,
    },
    /// `ENV =x`.
    #[error("{instruction} names can not be blank")]
    BlankName {
        /// Instruction.
        instruction: &'static str,
    },
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `ONBUILD ONBUILD …`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    /// `ONBUILD FROM …`, `ONBUILD MAINTAINER …`.
    #[error("{instruction} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger {
        /// Instruction.
        instruction: String,
    },
    /// STOPSIGNAL with an unknown signal.
    #[error("Invalid signal: {0}")]
    Signal(String),
    /// EXPOSE with a bad port.
    #[error("invalid containerPort: {0}")]
    Port(String),
    /// EXPOSE with a bad protocol.
    #[error("invalid proto: {0}")]
    Proto(String),
    /// HEALTHCHECK problems.
    #[error("HEALTHCHECK: {0}")]
    Healthcheck(String),
    /// An opening quote without its closing one.
    #[error("unmatched quote in `{0}`")]
    Quote(String),
}

/// An empty JSON object (`ExposedPorts` and `Volumes` values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's `HEALTHCHECK` settings (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    /// Time a check may take.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    /// Start-up grace period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    /// Interval during the start period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    /// Failures before unhealthy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The image config's `config` object, with Docker's field names (a superset of OCI's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `USER`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `EXPOSE`: `"80/tcp": {}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// `ENV`: `KEY=value`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `ENTRYPOINT`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`: `"/data": {}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    /// `WORKDIR`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `LABEL`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `ONBUILD` triggers (Docker extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    /// `HEALTHCHECK` (Docker extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// Applies `changes` in order to `config`, as `docker import --change` does.
///
/// # Errors
/// The first refused instruction.
pub fn apply(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for line in changes {
        apply_one(config, line.trim(), &mut cmd_set)?;
    }
    Ok(())
}

fn apply_one(c: &mut ContainerConfig, line: &str, cmd_set: &mut bool) -> Result<()> {
    if line.is_empty() {
        return Ok(());
    }
    let (word, rest) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(w, r)| (w, r.trim()));
    match word.to_ascii_uppercase().as_str() {
        "CMD" => {
            c.cmd = Some(command(rest));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            c.entrypoint = Some(command(rest));
            // Docker: a new ENTRYPOINT drops an inherited CMD unless CMD was set here too.
            if !*cmd_set {
                c.cmd = None;
            }
        }
        "ENV" => {
            for (k, v) in name_values(rest, "ENV")? {
                let prefix = format!("{k}=");
                let entry = format!("{k}={v}");
                match c
                    .env
                    .iter_mut()
                    .find(|e| e.starts_with(&prefix) || **e == k)
                {
                    Some(existing) => *existing = entry,
                    None => c.env.push(entry),
                }
            }
        }
        "LABEL" => {
            for (k, v) in name_values(rest, "LABEL")? {
                c.labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            let dir = single(rest, "WORKDIR")?;
            c.working_dir = Some(workdir(c.working_dir.as_deref(), &dir));
        }
        "USER" => c.user = Some(single(rest, "USER")?),
        "STOPSIGNAL" => {
            let sig = single(rest, "STOPSIGNAL")?;
            if !valid_signal(&sig) {
                return Err(ChangeError::Signal(sig));
            }
            c.stop_signal = Some(sig);
        }
        "EXPOSE" => {
            let ports = words(rest)?;
            if ports.is_empty() {
                return Err(ChangeError::AtLeastOne {
                    instruction: "EXPOSE",
                });
            }
            for p in ports {
                for spec in expose(&p)? {
                    c.exposed_ports.insert(spec, Empty {});
                }
            }
        }
        "VOLUME" => {
            let vols = match json_array(rest) {
                Some(v) => v,
                None => words(rest)?,
            };
            if vols.is_empty() {
                return Err(ChangeError::AtLeastOne {
                    instruction: "VOLUME",
                });
            }
            for v in vols {
                let v = v.trim().to_owned();
                if v.is_empty() {
                    return Err(ChangeError::EmptyVolume);
                }
                c.volumes.insert(v, Empty {});
            }
        }
        "ONBUILD" => {
            let trigger = rest
                .split_whitespace()
                .next()
                .ok_or(ChangeError::AtLeastOne {
                    instruction: "ONBUILD",
                })?
                .to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return Err(ChangeError::OnbuildChain),
                "FROM" | "MAINTAINER" => {
                    return Err(ChangeError::OnbuildTrigger {
                        instruction: trigger,
                    })
                }
                _ => c.on_build.push(rest.to_owned()),
            }
        }
        "HEALTHCHECK" => c.healthcheck = Some(healthcheck(rest)?),
        other => {
            return Err(ChangeError::NotValid {
                instruction: other.to_ascii_lowercase(),
            })
        }
    }
    Ok(())
}

/// Exec form (a JSON array of strings) or shell form (`/bin/sh -c …`).
fn command(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    if rest.starts_with('[') {
        serde_json::from_str(rest).ok()
    } else {
        None
    }
}

fn single(rest: &str, instruction: &'static str) -> Result<String> {
    let w = words(rest)?;
    match <[String; 1]>::try_from(w) {
        Ok([one]) => Ok(one),
        Err(_) => Err(ChangeError::ExactlyOne { instruction }),
    }
}

/// `ENV A=1 B="two words"` or the legacy `ENV A one value`.
fn name_values(rest: &str, instruction: &'static str) -> Result<Vec<(String, String)>> {
    let first = rest
        .split_whitespace()
        .next()
        .ok_or(ChangeError::AtLeastOne { instruction })?;
    if !first.contains('=') {
        // Legacy form: the name, then the rest of the line as the value.
        let (name, value) = rest
            .split_once(char::is_whitespace)
            .ok_or(ChangeError::TwoArguments { instruction })?;
        let value = lex(value.trim(), false)?.concat();
        return Ok(vec![(name.to_owned(), value)]);
    }
    let mut out = Vec::new();
    for w in words(rest)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| ChangeError::NoEquals { word: w.clone() })?;
        if k.is_empty() {
            return Err(ChangeError::BlankName { instruction });
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn words(rest: &str) -> Result<Vec<String>> {
    lex(rest, true)
}

/// Splits on whitespace (when `split`) with shell quoting: `'…'` is literal, `"…"` honours
/// `\"`, `\\` and `\$`, and a backslash outside quotes escapes the next character.
fn lex(s: &str, split: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            c if split && c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(ChangeError::Quote(s.to_owned())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\' | '$')) => {
                            cur.push(chars.next().expect("peeked"));
                        }
                        Some(c) => cur.push(c),
                        None => return Err(ChangeError::Quote(s.to_owned())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().unwrap_or('\\'));
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Docker's WORKDIR: relative paths join the current one; the result is clean and absolute.
fn workdir(current: Option<&str>, requested: &str) -> String {
    let joined = if requested.starts_with('/') {
        requested.to_owned()
    } else {
        format!("{}/{requested}", current.unwrap_or("/"))
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn valid_signal(s: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"))
    {
        return off.parse::<u32>().is_ok_and(|n| n <= 30);
    }
    NAMES.contains(&name) || name == "RTMIN" || name == "RTMAX"
}

/// `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]`, ….
fn expose(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(ChangeError::Proto(proto));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ChangeError::Port(spec.to_owned()))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(ChangeError::Port(spec.to_owned()));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn healthcheck(rest: &str) -> Result<Healthcheck> {
    let mut h = Healthcheck::default();
    let mut rest = rest.trim();
    while let Some(opt) = rest.strip_prefix("--") {
        let (flag, after) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| ChangeError::Healthcheck(format!("option `--{flag}` needs a value")))?;
        match name {
            "interval" => h.interval = duration(value)?,
            "timeout" => h.timeout = duration(value)?,
            "start-period" => h.start_period = duration(value)?,
            "start-interval" => h.start_interval = duration(value)?,
            "retries" => {
                h.retries = value
                    .parse()
                    .map_err(|_| ChangeError::Healthcheck(format!("invalid retries `{value}`")))?;
            }
            _ => return Err(ChangeError::Healthcheck(format!("unknown flag: --{name}"))),
        }
        rest = after.trim_start();
    }
    let (word, args) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(w, a)| (w, a.trim()));
    match word.to_ascii_uppercase().as_str() {
        "NONE" if args.is_empty() => h.test = vec!["NONE".into()],
        "NONE" => {
            return Err(ChangeError::Healthcheck(
                "HEALTHCHECK NONE takes no arguments".into(),
            ))
        }
        "CMD" if !args.is_empty() => {
            h.test = match json_array(args) {
                Some(exec) => std::iter::once("CMD".to_owned()).chain(exec).collect(),
                None => vec!["CMD-SHELL".into(), args.to_owned()],
            };
        }
        _ => {
            return Err(ChangeError::Healthcheck(
                "expected `NONE` or `CMD` followed by a command".into(),
            ))
        }
    }
    Ok(h)
}

/// Go's `time.ParseDuration` subset used in Dockerfiles: `1h2m3s`, `500ms`, `1.5s`.
fn duration(s: &str) -> Result<u64> {
    let bad = || ChangeError::Healthcheck(format!("invalid duration `{s}`"));
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_drops_inherited_cmd_but_not_one_set_here() {
        let mut c = ContainerConfig {
            cmd: Some(vec!["old".into()]),
            ..ContainerConfig::default()
        };
        apply(&mut c, &["ENTRYPOINT [\"/e\"]".into()]).unwrap();
        assert_eq!(c.cmd, None);
        let mut c = ContainerConfig::default();
        apply(&mut c, &["CMD x".into(), "ENTRYPOINT /e".into()]).unwrap();
        assert_eq!(c.cmd.unwrap()[2], "x");
    }

    #[test]
    fn env_replaces_existing_keys() {
        let mut c = ContainerConfig::default();
        apply(&mut c, &["ENV A=1 B=2".into(), "ENV A 3".into()]).unwrap();
        assert_eq!(c.env, ["A=3", "B=2"]);
    }

    #[test]
    fn durations() {
        assert_eq!(duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration("500ms").unwrap(), 500_000_000);
        assert!(duration("5").is_err());
    }
}
