//! `berth login`: check credentials against a registry (`GET /v2/` with the token flow) and
//! store them in berth's credentials file (`specs/docker-cli/login.md`).

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use anyhow::{bail, Context as _};

use crate::cli::LoginArgs;
use crate::context::Ctx;
use crate::remote::credentials::auth_key;
use crate::remote::{Client, RemoteError, RemoteOptions, DOCKER_HUB};

/// Runs `login`: prints `Login Succeeded` on stdout, as Docker does.
///
/// # Errors
/// Refused credentials (nothing is stored), an unreachable registry, missing input.
pub async fn run(ctx: &Ctx, args: &LoginArgs) -> anyhow::Result<()> {
    let registry = crate::remote::endpoint_name(args.server.as_deref().unwrap_or(DOCKER_HUB))?;
    let mut opts = RemoteOptions::load(&ctx.daemon)?;

    if args.password.is_some() && args.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let from_stdin = args.password_stdin || args.password.as_deref() == Some("-");
    let mut password = if from_stdin {
        if args.username.is_none() {
            bail!("must provide --username with --password-stdin");
        }
        Some(read_stdin_password()?)
    } else {
        if args.password.is_some() {
            ctx.printer
                .warn("using --password on the command line is insecure; use --password-stdin");
        }
        args.password.clone()
    };

    // No flags: try what is stored first, as Docker does.
    if args.username.is_none() && password.is_none() {
        if let Some((user, pass)) = opts.credentials.get(&registry) {
            ctx.printer
                .status("Authenticating with existing credentials...");
            match verify(&registry, &opts, &user, &pass).await {
                Ok(()) => {
                    ctx.printer.data("Login Succeeded");
                    return Ok(());
                }
                Err(e) if is_unauthorized(&e) => {
                    ctx.printer
                        .status(&format!("Login did not succeed, error: {e:#}"));
                }
                Err(e) => return Err(e),
            }
        }
    }

    let username = match &args.username {
        Some(u) => u.trim().to_owned(),
        None => prompt("Username: ", true)?,
    };
    if username.is_empty() {
        bail!("a username is required");
    }
    if password.is_none() {
        password = Some(prompt("Password: ", false)?);
    }
    let password = password.unwrap_or_default();
    if password.is_empty() {
        bail!("a password is required");
    }

    verify(&registry, &opts, &username, &password).await?;
    opts.credentials
        .set(&registry, &username, &password)
        .context("cannot store the credentials")?;
    ctx.printer.warn(&format!(
        "your password is stored unencrypted in `{}` (key `{}`)",
        opts.credentials.path().display(),
        auth_key(&registry)
    ));
    ctx.printer.data("Login Succeeded");
    Ok(())
}

fn is_unauthorized(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<RemoteError>(),
            Some(RemoteError::Unauthorized { .. } | RemoteError::Denied { .. })
        )
    })
}

/// `GET /v2/` with these credentials.
async fn verify(
    registry: &str,
    opts: &RemoteOptions,
    user: &str,
    pass: &str,
) -> anyhow::Result<()> {
    let client = Client::connect_as(registry, opts, user, pass)
        .await
        .with_context(|| format!("cannot reach registry {registry}"))?;
    client.ping().await.map_err(|e| {
        let what = match &e {
            RemoteError::Unauthorized { .. } => "401 Unauthorized".to_owned(),
            RemoteError::Denied { .. } => "403 Forbidden".to_owned(),
            _ => return anyhow::Error::new(e).context(format!("cannot log in to {registry}")),
        };
        anyhow::Error::new(e).context(format!(
            "login attempt to {}/v2/ failed with status: {what}",
            client.base_url()
        ))
    })
}

/// The whole of stdin without its trailing newline.
fn read_stdin_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read the password from stdin")?;
    let s = s.strip_suffix('\n').unwrap_or(&s);
    let s = s.strip_suffix('\r').unwrap_or(s);
    Ok(s.to_owned())
}

/// Asks on the terminal (the prompt on stderr); `echo` false hides what is typed.
#[allow(clippy::print_stderr)]
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "cannot ask for the {} without a terminal; pass --username and --password-stdin",
            label.trim_end_matches(": ").to_lowercase()
        );
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if echo {
        stdin.lock().read_line(&mut line)?;
    } else {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn off echo")?;
        let read = stdin.lock().read_line(&mut line);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        read?;
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
