//! `berth rename CONTAINER NEW_NAME` (also `container rename`), and the container name rules
//! `run --name` shares: Docker's pattern `[a-zA-Z0-9][a-zA-Z0-9_.-]+` and its conflict message.
//!
//! Names are unique. Whoever gives a container a name (`run`, `rename`) holds the names lock
//! ([`container::lock_names`]) from the uniqueness check until the name is in `state.json`, so
//! two of them never both take one name.

use std::path::Path;

use crate::cli::RenameArgs;
use crate::container;
use crate::context::Ctx;

/// The characters Docker allows, as its messages print them.
const VALID_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Whether `name` (without its leading `/`) matches `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Refuses a name Docker would refuse; `shown` is the name as the message prints it.
///
/// # Errors
/// Docker's `Invalid container name (…), only … are allowed`.
pub fn check_valid(name: &str, shown: &str) -> anyhow::Result<()> {
    if valid_name(name.strip_prefix('/').unwrap_or(name)) {
        Ok(())
    } else {
        anyhow::bail!(
            "Error response from daemon: Invalid container name ({shown}), only {VALID_CHARS} are allowed"
        )
    }
}

/// Refuses `name` when a container other than `except` has it. The caller holds the names
/// lock.
///
/// # Errors
/// Docker's conflict message.
pub fn check_free(data_root: &Path, name: &str, except: Option<&str>) -> anyhow::Result<()> {
    let taken = container::list(data_root)
        .into_iter()
        .find(|(_, s)| s.name == name && Some(s.id.as_str()) != except);
    match taken {
        Some((_, s)) => anyhow::bail!(
            "Error response from daemon: Conflict. The container name \"/{name}\" is already in \
             use by container \"{}\". You have to remove (or rename) that container to be able \
             to reuse that name.",
            s.id
        ),
        None => Ok(()),
    }
}

/// Renames the container.
///
/// # Errors
/// Docker's messages: an empty or invalid name, the same name, a name in use, no such
/// container.
pub fn run(ctx: &Ctx, args: &RenameArgs) -> anyhow::Result<()> {
    let data_root = ctx.store.root();
    if args.container.is_empty() || args.new_name.is_empty() {
        anyhow::bail!("Error response from daemon: Neither old nor new names may be empty");
    }
    let new = args.new_name.strip_prefix('/').unwrap_or(&args.new_name);
    let _names = container::lock_names(data_root)?;
    let (dir, state) = container::find(data_root, &args.container)?;
    if state.name == new {
        anyhow::bail!(
            "Error response from daemon: Renaming a container with the same name as its current name"
        );
    }
    // moby wraps these in the name reservation's words.
    let allocating = |e: anyhow::Error| {
        let e = e.to_string();
        let why = e.strip_prefix("Error response from daemon: ").unwrap_or(&e);
        anyhow::anyhow!("Error response from daemon: Error when allocating new name: {why}")
    };
    check_valid(new, &format!("/{new}")).map_err(allocating)?;
    check_free(data_root, new, Some(&state.id)).map_err(allocating)?;
    container::update(&dir, |s| new.clone_into(&mut s.name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("web", true)]
    #[case("my_app.v2-1", true)]
    #[case("0abc", true)]
    #[case("a", false)]
    #[case("", false)]
    #[case("_web", false)]
    #[case("-web", false)]
    #[case("my app", false)]
    #[case("a/b", false)]
    #[case("caf\u{e9}", false)]
    fn names_follow_dockers_pattern(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(valid_name(name), ok, "{name}");
    }

    #[test]
    fn messages_are_dockers() {
        assert_eq!(
            check_valid("a b", "/a b").unwrap_err().to_string(),
            "Error response from daemon: Invalid container name (/a b), only \
             [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert!(check_valid("/ok", "/ok").is_ok());
    }

    #[test]
    fn a_taken_name_conflicts_except_with_itself() {
        let t = tempfile::tempdir().unwrap();
        let dir = container::root(t.path()).join("abc");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = container::Lock::take(&dir).unwrap();
        let s = container::State {
            id: "abc".into(),
            name: "web".into(),
            ..container::State::default()
        };
        container::save(&dir, &s, &lock).unwrap();
        let e = check_free(t.path(), "web", None).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "Error response from daemon: Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove"
            ),
            "{e}"
        );
        assert!(check_free(t.path(), "web", Some("abc")).is_ok());
        assert!(check_free(t.path(), "db", None).is_ok());
    }
}
