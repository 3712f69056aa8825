//! `berth-registry user add NAME` / `user rm NAME`: reading the password (a prompt with echo off,
//! or one line of standard input) and rewriting the htpasswd file atomically.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{htpasswd, AuthError};

/// Reads a password: one line of stdin with `password_stdin`, else a prompt on the terminal
/// (asked twice).
///
/// # Errors
/// When nothing can be read, or the two entries differ.
pub fn read_password(user: &str, password_stdin: bool) -> Result<String, AuthError> {
    let line = || -> Result<String, AuthError> {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut s)
            .map_err(|e| AuthError::Invalid(format!("cannot read the password: {e}")))?;
        Ok(s.trim_end_matches(['\n', '\r']).to_owned())
    };
    if password_stdin || !std::io::stdin().is_terminal() {
        return line();
    }
    let echo = |on: bool| {
        let _ = Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(Stdio::inherit())
            .status();
    };
    let ask = |prompt: &str| {
        let mut err = std::io::stderr();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        echo(false);
        let r = line();
        echo(true);
        let _ = writeln!(err);
        r
    };
    let first = ask(&format!("Password for {user}: "))?;
    let second = ask("Again: ")?;
    if first != second {
        return Err(AuthError::Invalid("the passwords differ".into()));
    }
    Ok(first)
}

/// Adds or replaces `user`.
///
/// # Errors
/// As [`htpasswd::add_user`].
pub fn add(file: &Path, user: &str, password: &str) -> Result<(), AuthError> {
    htpasswd::add_user(file, user, password)
}

/// Removes `user`.
///
/// # Errors
/// When there is no such user, or the file cannot be rewritten.
pub fn remove(file: &Path, user: &str) -> Result<(), AuthError> {
    if htpasswd::remove_user(file, user)? {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "no user `{user}` in {}",
            file.display()
        )))
    }
}
