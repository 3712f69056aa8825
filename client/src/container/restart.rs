//! Docker's restart policy (`--restart`): parsing, the decision after an exit, and the delay
//! between restarts. The monitor ([`crate::commands::monitor`]) applies it.
//!
//! May call [`super::state`].

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A `--restart` value Docker refuses (its messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestartPolicyError {
    /// `:3`.
    #[error("invalid restart policy format: no policy provided before colon")]
    NoPolicy,
    /// `on-failure:x`.
    #[error("invalid restart policy format: maximum retry count must be an integer")]
    CountNotInteger,
    /// A count with another policy, a negative count or an unknown name.
    #[error("Error response from daemon: invalid restart policy: {0}")]
    Invalid(String),
}

/// Docker's restart policy (`--restart`), as `state.json`'s `RestartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "Name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (the default).
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (`0`: no limit).
    OnFailure {
        /// `:max-retries`.
        #[serde(rename = "MaximumRetryCount")]
        max: u32,
    },
    /// Restart after any exit, unless stopped by the user.
    Always,
    /// Like `always` (there is no daemon restart to tell them apart).
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses `--restart` with Docker's messages.
    ///
    /// # Errors
    /// A malformed value, an unknown policy or a misplaced or negative retry count.
    pub fn parse(v: &str) -> Result<Self, RestartPolicyError> {
        let (name, count) = match v.split_once(':') {
            Some(("", _)) => return Err(RestartPolicyError::NoPolicy),
            Some((name, count)) => (name, count),
            None => (v, ""),
        };
        let count: i64 = if count.is_empty() {
            0
        } else {
            count
                .parse()
                .map_err(|_| RestartPolicyError::CountNotInteger)?
        };
        let daemon = |m: &str| RestartPolicyError::Invalid(m.to_owned());
        match name {
            "no" | "" | "always" | "unless-stopped" if count != 0 => Err(daemon(&format!(
                "maximum retry count can only be used with 'on-failure'{}",
                if count < 0 { " and cannot be negative" } else { "" }
            ))),
            "no" | "" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "unless-stopped" => Ok(Self::UnlessStopped),
            "on-failure" => u32::try_from(count)
                .map(|max| Self::OnFailure { max })
                .map_err(|_| daemon("maximum retry count cannot be negative")),
            other => Err(daemon(&format!(
                "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ))),
        }
    }

    /// Whether this is `no`.
    #[must_use]
    pub fn is_none(self) -> bool {
        self == Self::No
    }

    /// Docker's decision after an exit with `code`, `restarts` restarts so far.
    #[must_use]
    pub fn should_restart(self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// First restart delay; it doubles after each restart up to [`RESTART_DELAY_MAX`], and starts
/// over once the container ran for [`RESTART_RESET_AFTER`].
pub const RESTART_DELAY_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest restart delay (Docker's is a minute; short for now).
pub const RESTART_DELAY_MAX: std::time::Duration = std::time::Duration::from_secs(1);
/// A run this long resets the delay.
pub const RESTART_RESET_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The delay before the next restart, after `previous` and a run of `ran`.
#[must_use]
pub fn restart_delay(
    previous: Option<std::time::Duration>,
    ran: std::time::Duration,
) -> std::time::Duration {
    match previous {
        Some(d) if ran < RESTART_RESET_AFTER => (d * 2).min(RESTART_DELAY_MAX),
        _ => RESTART_DELAY_MIN,
    }
}

/// Records that the user stopped the container (`stop`, `kill`, `rm -f`), before it is
/// signalled, so its monitor does not restart it.
pub fn mark_stopped_by_user(dir: &Path) {
    let _ = super::state::update(dir, |s| s.stopped_by_user = true);
}
#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("no", Ok(RestartPolicy::No))]
    #[case("always", Ok(RestartPolicy::Always))]
    #[case("unless-stopped", Ok(RestartPolicy::UnlessStopped))]
    #[case("on-failure", Ok(RestartPolicy::OnFailure { max: 0 }))]
    #[case("on-failure:3", Ok(RestartPolicy::OnFailure { max: 3 }))]
    #[case("no:0", Ok(RestartPolicy::No))]
    #[case(
        ":3",
        Err("invalid restart policy format: no policy provided before colon")
    )]
    #[case(
        "on-failure:x",
        Err("invalid restart policy format: maximum retry count must be an integer")
    )]
    #[case("on-failure:-1", Err("Error response from daemon: invalid restart policy: maximum retry count cannot be negative"))]
    #[case("always:2", Err("Error response from daemon: invalid restart policy: maximum retry count can only be used with 'on-failure'"))]
    #[case("no:-1", Err("Error response from daemon: invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot be negative"))]
    #[case("sometimes", Err("Error response from daemon: invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))]
    fn restart_policies_parse_like_docker(
        #[case] v: &str,
        #[case] want: Result<RestartPolicy, &str>,
    ) {
        assert_eq!(
            RestartPolicy::parse(v).map_err(|e| e.to_string()),
            want.map_err(str::to_owned)
        );
    }

    #[rstest::rstest]
    #[case(RestartPolicy::No, 1, 0, false, false)]
    #[case(RestartPolicy::Always, 0, 9, false, true)]
    #[case(RestartPolicy::Always, 0, 0, true, false)]
    #[case(RestartPolicy::UnlessStopped, 1, 0, false, true)]
    #[case(RestartPolicy::UnlessStopped, 1, 0, true, false)]
    #[case(RestartPolicy::OnFailure { max: 3 }, 0, 0, false, false)]
    #[case(RestartPolicy::OnFailure { max: 3 }, 1, 2, false, true)]
    #[case(RestartPolicy::OnFailure { max: 3 }, 1, 3, false, false)]
    #[case(RestartPolicy::OnFailure { max: 0 }, 1, 100, false, true)]
    #[case(RestartPolicy::OnFailure { max: 0 }, 1, 0, true, false)]
    fn restart_decision(
        #[case] p: RestartPolicy,
        #[case] code: i32,
        #[case] restarts: u32,
        #[case] stopped: bool,
        #[case] want: bool,
    ) {
        assert_eq!(p.should_restart(code, restarts, stopped), want);
    }

    #[test]
    fn restart_delay_doubles_up_to_the_cap_and_resets() {
        use std::time::Duration as D;
        let short = D::from_millis(5);
        let mut d = None;
        let mut seen = vec![];
        for _ in 0..6 {
            let next = restart_delay(d, short);
            seen.push(next.as_millis());
            d = Some(next);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(restart_delay(d, D::from_secs(10)), RESTART_DELAY_MIN);
    }
}
