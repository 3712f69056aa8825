//! Tag listing (end-8) and the repository catalog, both with `n`/`last` pagination.

use super::{paths, Registry, Result, ServiceError};

/// One page of a sorted listing.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    /// Items on this page, ASCII-sorted.
    pub items: Vec<String>,
    /// Set when more items follow; the value to pass as `last` for the next page.
    pub next_last: Option<String>,
}

/// Cuts a sorted list into the page after `last` holding at most `n` items.
#[must_use]
pub fn paginate(sorted: Vec<String>, n: Option<usize>, last: Option<&str>) -> Page {
    let start = last.map_or(0, |l| sorted.partition_point(|x| x.as_str() <= l));
    let mut items: Vec<String> = sorted.into_iter().skip(start).collect();
    match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            let next_last = if n == 0 { None } else { items.last().cloned() };
            Page { items, next_last }
        }
        _ => Page {
            items,
            next_last: None,
        },
    }
}

impl Registry {
    /// Tags of `name` (end-8a/8b).
    ///
    /// # Errors
    /// `NameUnknown` when the repository does not exist; storage failures.
    pub fn list_tags(&self, name: &str, n: Option<usize>, last: Option<&str>) -> Result<Page> {
        // A repository exists once a manifest was pushed to it; a directory that is only a prefix
        // of deeper names (`a/b` of `a/b/c`) or holds only blobs is not one, as in the catalog.
        if !self.exists(&paths::manifests_dir(name))? {
            return Err(ServiceError::NameUnknown {
                name: name.to_owned(),
            });
        }
        // Only tags whose link exists: a crash while writing or deleting a tag can leave its
        // directory without the link, and such a tag does not resolve.
        let mut tags = Vec::new();
        for tag in self.list_or_empty(&paths::tags_dir(name))? {
            if self.exists(&paths::tag_link(name, &tag))? {
                tags.push(tag);
            }
        }
        tags.sort();
        Ok(paginate(tags, n, last))
    }

    /// All repositories (`/v2/_catalog`).
    ///
    /// # Errors
    /// Storage failures.
    pub fn catalog(&self, n: Option<usize>, last: Option<&str>) -> Result<Page> {
        let mut repos = Vec::new();
        self.walk_repositories("repositories", "", &mut repos)?;
        repos.sort();
        Ok(paginate(repos, n, last))
    }

    fn walk_repositories(&self, dir: &str, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let children = self.list_or_empty(dir)?;
        if children.iter().any(|c| c == "_manifests") {
            out.push(prefix.to_owned());
        }
        for child in children.iter().filter(|c| !c.starts_with('_')) {
            let name = if prefix.is_empty() {
                child.clone()
            } else {
                format!("{prefix}/{child}")
            };
            self.walk_repositories(&format!("{dir}/{child}"), &name, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pages() {
        let all = v(&["a", "b", "c", "d"]);
        assert_eq!(paginate(all.clone(), None, None).items, all);
        let p = paginate(all.clone(), Some(2), None);
        assert_eq!((p.items, p.next_last), (v(&["a", "b"]), Some("b".into())));
        let p = paginate(all.clone(), Some(2), Some("b"));
        assert_eq!((p.items, p.next_last), (v(&["c", "d"]), None));
        let p = paginate(all.clone(), Some(0), None);
        assert_eq!((p.items, p.next_last), (vec![], None));
        assert_eq!(
            paginate(all.clone(), None, Some("bb")).items,
            v(&["c", "d"])
        );
        assert_eq!(
            paginate(all, Some(10), Some("d")).items,
            Vec::<String>::new()
        );
    }
}
