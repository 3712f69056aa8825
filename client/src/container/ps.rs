//! `ps`: which containers to list, as Docker chooses them: the running ones, `all`, the
//! `last` N created (newest first), `--filter` as [`super::ps_filter`] describes.
//!
//! May call [`super::state`] and [`super::ps_filter`]; the table is the command's.

use super::ps_filter::{PsFilter, PsFilterError};
use super::state::{self, State, Status};
use crate::filters::Filters;
use crate::store::Store;

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, PsFilterError>;

/// Which containers (`ps`'s flags).
#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    /// `-a`.
    pub all: bool,
    /// `-n`: the last N created, whatever their status (0 or less: not asked).
    pub last: i64,
    /// `-l`: the last one created.
    pub latest: bool,
    /// `--filter`s, unparsed.
    pub filters: Vec<String>,
}

/// The containers to list, newest first.
///
/// # Errors
/// A filter Docker refuses.
pub fn ps(store: &Store, opts: &PsOptions) -> Result<Vec<State>> {
    let filter = PsFilter::new(store, Filters::parse(&opts.filters)?)?;
    let root = store.root();
    let all = state::list(root);
    let last = if opts.latest { 1 } else { opts.last };
    let matching = all.into_iter().filter(|(d, s)| filter.keep(root, d, s));
    Ok(match usize::try_from(last) {
        Ok(n) if last > 0 => matching.take(n).map(|(_, s)| s).collect(),
        _ => matching
            .map(|(_, s)| s)
            .filter(|s| opts.all || filter.implies_all() || s.status() == Status::Running)
            .collect(),
    })
}
