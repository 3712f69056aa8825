//! `rename`: gives a container a new name under the names lock, with Docker's messages.
//!
//! May call [`super::state`], [`super::lock`] and [`super::names`].

use std::path::Path;

use super::lock::{self, LockError};
use super::names::{self, NameError};
use super::state::{self, StateError};

/// A container could not be renamed (Docker's messages).
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    /// An empty old or new name.
    #[error("Error response from daemon: Neither old nor new names may be empty")]
    Empty,
    /// The new name is the current one.
    #[error(
        "Error response from daemon: Renaming a container with the same name as its current name"
    )]
    SameName,
    /// The new name is invalid or taken (moby wraps these in the name reservation's words).
    #[error("Error response from daemon: Error when allocating new name: {}", strip_daemon(.0))]
    Allocating(NameError),
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// The names lock.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// `e`'s message without Docker's `Error response from daemon: ` prefix.
fn strip_daemon(e: &NameError) -> String {
    let e = e.to_string();
    e.strip_prefix("Error response from daemon: ")
        .unwrap_or(&e)
        .to_owned()
}

/// Renames the container `container` to `new_name` (a leading `/` is dropped).
///
/// # Errors
/// Docker's messages: an empty or invalid name, the same name, a name in use, no such
/// container.
pub fn rename(data_root: &Path, container: &str, new_name: &str) -> Result<(), RenameError> {
    if container.is_empty() || new_name.is_empty() {
        return Err(RenameError::Empty);
    }
    let new = new_name.strip_prefix('/').unwrap_or(new_name);
    let _names = lock::lock_names(data_root)?;
    let (dir, state) = state::find(data_root, container)?;
    if state.name == new {
        return Err(RenameError::SameName);
    }
    names::check_valid(new, &format!("/{new}")).map_err(RenameError::Allocating)?;
    names::check_free(data_root, new, Some(&state.id)).map_err(RenameError::Allocating)?;
    state::update(&dir, |s| new.clone_into(&mut s.name))?;
    Ok(())
}
