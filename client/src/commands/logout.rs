//! `berth logout`: forget a registry's credentials (`specs/docker-cli/logout.md`).

use anyhow::Context as _;

use crate::cli::LogoutArgs;
use crate::context::Ctx;
use crate::remote::credentials::auth_key;
use crate::remote::{Credentials, DOCKER_HUB};

/// Runs `logout`. Like Docker, prints `Removing login credentials for SERVER`, or
/// `Not logged in to SERVER` (still a success).
///
/// # Errors
/// A credentials file that cannot be read or written.
pub fn run(ctx: &Ctx, args: &LogoutArgs) -> anyhow::Result<()> {
    let registry = crate::remote::endpoint_name(args.server.as_deref().unwrap_or(DOCKER_HUB))?;
    let shown = auth_key(&registry);
    let mut creds = Credentials::load()?;
    let removed = creds
        .remove(&registry)
        .context("cannot remove the credentials")?;
    if removed {
        ctx.printer
            .data(&format!("Removing login credentials for {shown}"));
    } else {
        ctx.printer.data(&format!("Not logged in to {shown}"));
    }
    if let Some(other) = creds.source(&registry) {
        ctx.printer.warn(&format!(
            "credentials for {shown} remain in `{}`, which berth does not change; remove them with `docker logout {}`",
            other.display(),
            args.server.as_deref().unwrap_or("")
        ));
    }
    Ok(())
}
