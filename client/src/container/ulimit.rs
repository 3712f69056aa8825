//! `run --ulimit TYPE=SOFT[:HARD]`, parsed as Docker does (`go-units.ParseUlimit`) and put in
//! the spec's `process.rlimits`. The runtime clamps a limit above its own hard limit to it
//! (no `CAP_SYS_RESOURCE`: [`berth_runtime::run::apply_rlimits`]). Calls only the runtime's
//! spec types (no other module of the crate).

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec};

/// Docker's names, as `ulimit` types.
const TYPES: &[(&str, PosixRlimitType)] = &[
    ("core", PosixRlimitType::RlimitCore),
    ("cpu", PosixRlimitType::RlimitCpu),
    ("data", PosixRlimitType::RlimitData),
    ("fsize", PosixRlimitType::RlimitFsize),
    ("locks", PosixRlimitType::RlimitLocks),
    ("memlock", PosixRlimitType::RlimitMemlock),
    ("msgqueue", PosixRlimitType::RlimitMsgqueue),
    ("nice", PosixRlimitType::RlimitNice),
    ("nofile", PosixRlimitType::RlimitNofile),
    ("nproc", PosixRlimitType::RlimitNproc),
    ("rss", PosixRlimitType::RlimitRss),
    ("rtprio", PosixRlimitType::RlimitRtprio),
    ("rttime", PosixRlimitType::RlimitRttime),
    ("sigpending", PosixRlimitType::RlimitSigpending),
    ("stack", PosixRlimitType::RlimitStack),
];

/// A `--ulimit` Docker refuses.
#[derive(Debug, thiserror::Error)]
pub enum UlimitError {
    /// A malformed value (Docker's flag wording).
    #[error("invalid argument \"{raw}\" for \"--ulimit\" flag: {why}")]
    Invalid {
        /// The flag's value.
        raw: String,
        /// Why it is refused.
        why: String,
    },
    /// oci-spec refused the limit.
    #[error(transparent)]
    Build(#[from] oci_spec::OciSpecError),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, UlimitError>;

/// Parses one `--ulimit` value.
///
/// # Errors
/// Docker's messages (`invalid ulimit argument`, `invalid ulimit type`, a soft limit above
/// the hard one).
pub fn parse(raw: &str) -> Result<PosixRlimit> {
    let flag = |why: String| UlimitError::Invalid {
        raw: raw.to_owned(),
        why,
    };
    let (name, values) = raw
        .split_once('=')
        .ok_or_else(|| flag(format!("invalid ulimit argument: {raw}")))?;
    let typ = TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| flag(format!("invalid ulimit type: {name}")))?;
    let number = |v: &str| -> Result<u64> {
        // Docker takes -1 as unlimited.
        if v == "-1" {
            return Ok(u64::MAX);
        }
        v.parse::<u64>().map_err(|_| {
            flag(format!(
                "invalid ulimit soft value: {v}: strconv.ParseInt: parsing \"{v}\": invalid syntax"
            ))
        })
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => {
            let v = number(values)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(flag(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()?)
}

/// Puts the `--ulimit`s in the spec, replacing limits of the same type.
///
/// # Errors
/// A malformed value.
pub fn apply(spec: &mut Spec, ulimits: &[String]) -> Result<()> {
    if ulimits.is_empty() {
        return Ok(());
    }
    let Some(mut process) = spec.process().clone() else {
        return Ok(());
    };
    let mut limits = process.rlimits().clone().unwrap_or_default();
    for raw in ulimits {
        let l = parse(raw)?;
        limits.retain(|x| x.typ() != l.typ());
        limits.push(l);
    }
    process.set_rlimits(Some(limits));
    spec.set_process(Some(process));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_follow_docker() {
        let l = parse("nofile=1024:2048").unwrap();
        assert_eq!(
            (l.typ(), l.soft(), l.hard()),
            (PosixRlimitType::RlimitNofile, 1024, 2048)
        );
        let l = parse("nproc=100").unwrap();
        assert_eq!((l.soft(), l.hard()), (100, 100));
        for (raw, want) in [
            ("nofile", "invalid ulimit argument: nofile"),
            ("bogus=1", "invalid ulimit type: bogus"),
            (
                "nofile=2048:1024",
                "soft limit must be less than or equal to hard limit",
            ),
            ("nofile=x", "invalid ulimit soft value: x"),
        ] {
            let e = parse(raw).unwrap_err().to_string();
            assert!(e.contains(want), "{raw}: {e}");
            assert!(e.starts_with(&format!("invalid argument \"{raw}\" for \"--ulimit\" flag")));
        }
    }
}
