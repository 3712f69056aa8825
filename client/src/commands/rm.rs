//! `berth rm`: removes containers that are not running (`-f`: SIGKILL first), with what they
//! left on the host (mount, cgroups); prints each name or ID as given.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::RmArgs;
use crate::container::{self, Status};
use crate::context::Ctx;

/// Removes the containers.
///
/// # Errors
/// A container that is missing or running without `-f` (the others are removed).
pub fn run(ctx: &Ctx, args: &RmArgs) -> anyhow::Result<()> {
    super::each(ctx, &args.containers, |name| {
        remove(ctx, name, args.force, args.volumes).map(|()| Some(name.to_owned()))
    })
}

/// Removes one container (`force`: kill it first; `volumes`: its anonymous volumes too).
///
/// # Errors
/// Docker's messages for a missing or running container.
pub fn remove(ctx: &Ctx, name: &str, force: bool, volumes: bool) -> anyhow::Result<()> {
    let (dir, state) = container::find(ctx.store.root(), name)?;
    if !state.status().can_remove() {
        if !force {
            anyhow::bail!(
                "Error response from daemon: cannot remove container \"/{}\": container is \
                 running: stop the container before removing or force remove",
                state.name
            );
        }
        container::mark_stopped_by_user(&dir);
        let _ = container::signal(&state, Signal::SIGKILL);
        let _ = container::wait_exit(&dir, Some(Duration::from_secs(30)));
    }
    // Let the owner finish its teardown (a `--rm` monitor removes the directory itself).
    container::wait_owner(&state, Duration::from_secs(10));
    if !dir.exists() {
        if volumes {
            let _ = crate::volumes::remove_anonymous(ctx.store.root(), &state.volumes);
        }
        return Ok(());
    }
    let _lock = container::Lock::take(&dir)?;
    if container::load(&dir).is_ok_and(|s| s.status() == Status::Running) {
        anyhow::bail!(
            "Error response from daemon: cannot remove container \"/{}\": could not kill",
            state.name
        );
    }
    container::teardown(&dir, &state.id);
    if container::rootfs_mounted(&dir) {
        anyhow::bail!(
            "Error response from daemon: cannot remove container \"/{}\": its root file system is still mounted",
            state.name
        );
    }
    fs_err::remove_dir_all(&dir)?;
    if volumes {
        // Named volumes stay, as with Docker.
        let _ = crate::volumes::remove_anonymous(ctx.store.root(), &state.volumes);
    }
    Ok(())
}
