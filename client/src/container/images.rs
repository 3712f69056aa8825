//! Which images containers use, for image deletion (`rmi`, `image prune`): an image a
//! container uses (running or not) holds that container's lower layers, so it stays.
//!
//! May call [`super::state`].

use std::collections::HashMap;
use std::path::Path;

use super::state::{self, Status};

/// A container that uses an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The container's ID.
    pub id: String,
    /// Whether it runs.
    pub running: bool,
}

/// Image ID → the containers that use it.
#[must_use]
pub fn images_in_use(data_root: &Path) -> HashMap<String, Vec<User>> {
    let mut out: HashMap<String, Vec<User>> = HashMap::new();
    for (_, s) in state::list(data_root) {
        let running = s.status() == Status::Running;
        out.entry(s.image.clone()).or_default().push(User {
            id: s.id.clone(),
            running,
        });
    }
    out
}
