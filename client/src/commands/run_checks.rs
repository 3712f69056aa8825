//! Checks of `run`/`create` flags that need nothing but the flags, made before anything is
//! created (Docker's CLI and daemon refuse these before a container exists):
//!
//! - `-e`: a variable needs a name (docker/cli `opts.ValidateEnv`).
//! - `-w`: absolute (moby `daemon/container.go` `verifyContainerSettings`).
//! - `-h`: an RFC 1123 host name of at most 64 bytes (the kernel's `HOST_NAME_MAX`), as Docker
//!   1.10's `runconfig/opts/parse.go` checked. Docker has dropped that check since, but the name
//!   is written into the container's `/etc/hostname` and `/etc/hosts`, where a newline or a
//!   space adds entries of the caller's choosing.
//!
//! It calls nothing else in the crate but the CLI types.

use crate::cli::RunArgs;

/// Linux's `HOST_NAME_MAX`.
const HOST_NAME_MAX: usize = 64;

/// Refuses the flags Docker refuses; the caller exits 125.
///
/// # Errors
/// Docker's message for the first bad flag.
pub(crate) fn check(args: &RunArgs) -> anyhow::Result<()> {
    for e in &args.env {
        check_env(e)?;
    }
    if let Some(w) = &args.workdir {
        check_workdir(w)?;
    }
    if let Some(h) = &args.hostname {
        check_hostname(h)?;
    }
    Ok(())
}

/// `-e`: only the name is checked, as Docker does (#16585: the application judges the rest).
fn check_env(arg: &str) -> anyhow::Result<()> {
    let name = arg.split_once('=').map_or(arg, |(k, _)| k);
    if name.is_empty() {
        anyhow::bail!(
            "invalid argument \"{arg}\" for \"-e, --env\" flag: invalid environment variable: {arg}"
        );
    }
    Ok(())
}

/// `-w`: empty means the image's; anything else must be absolute.
fn check_workdir(dir: &str) -> anyhow::Result<()> {
    if !dir.is_empty() && !dir.starts_with('/') {
        anyhow::bail!(
            "Error response from daemon: the working directory '{dir}' is invalid, it needs to \
             be an absolute path"
        );
    }
    Ok(())
}

/// `-h`: dot-separated labels of ASCII letters, digits and inner hyphens; empty means the
/// default (the container ID).
fn check_hostname(name: &str) -> anyhow::Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.is_empty() && (name.len() > HOST_NAME_MAX || !name.split('.').all(label_ok)) {
        anyhow::bail!(
            "invalid hostname format for --hostname: `{}`",
            name.escape_debug()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::pair("A=1", true)]
    #[case::empty_value("A=", true)]
    #[case::bare("A", true)]
    #[case::spaces_are_the_apps_business("A B=1", true)]
    #[case::no_name("=x", false)]
    #[case::only_equals("=", false)]
    #[case::empty("", false)]
    fn env_names(#[case] arg: &str, #[case] ok: bool) {
        assert_eq!(check_env(arg).is_ok(), ok, "{arg:?}");
    }

    #[test]
    fn env_message_is_dockers() {
        assert_eq!(
            check_env("=x").unwrap_err().to_string(),
            "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
        );
    }

    #[rstest]
    #[case::absolute("/srv", true)]
    #[case::root("/", true)]
    #[case::image_default("", true)]
    #[case::relative("rel", false)]
    #[case::dot_relative("./x", false)]
    fn workdirs(#[case] dir: &str, #[case] ok: bool) {
        assert_eq!(check_workdir(dir).is_ok(), ok, "{dir:?}");
    }

    #[test]
    fn workdir_message_is_dockers() {
        assert_eq!(
            check_workdir("rel").unwrap_err().to_string(),
            "Error response from daemon: the working directory 'rel' is invalid, it needs to be \
             an absolute path"
        );
    }

    #[rstest]
    #[case::simple("box", true)]
    #[case::fqdn("ok-host.example.com", true)]
    #[case::digits("123", true)]
    #[case::upper("UPPER", true)]
    #[case::default("", true)]
    #[case::max_len(&"x".repeat(64), true)]
    #[case::too_long(&"x".repeat(65), false)]
    #[case::newline("a\nb", false)]
    #[case::hosts_injection("box\n6.6.6.6 registry", false)]
    #[case::space("a b", false)]
    #[case::underscore("bad_host", false)]
    #[case::leading_hyphen("-lead", false)]
    #[case::trailing_hyphen("trail-", false)]
    #[case::empty_label("a..b", false)]
    #[case::trailing_dot("a.", false)]
    #[case::non_ascii("hôte", false)]
    fn hostnames(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(check_hostname(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn hostname_message_shows_control_characters() {
        assert_eq!(
            check_hostname("a\nb").unwrap_err().to_string(),
            "invalid hostname format for --hostname: `a\\nb`"
        );
    }
}
