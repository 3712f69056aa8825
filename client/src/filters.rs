//! Docker's `--filter key=value` flags (moby's `filters.Args`): repeated flags with the same
//! key OR, different keys AND. Used by `ps` and `container prune`.

use std::collections::BTreeMap;

/// `--filter` flags Docker refuses.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A flag without `=`.
    #[error("bad format of filter (expected name=value)")]
    BadFormat,
    /// A key the command does not take.
    #[error("Error response from daemon: Invalid filter '{0}'")]
    UnknownKey(String),
}

/// Parsed `--filter` flags: key → values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the flags as Docker's CLI does (key lower-cased, both sides trimmed).
    ///
    /// # Errors
    /// Docker's `bad format of filter (expected name=value)`.
    pub fn parse(flags: &[String]) -> Result<Self, FilterError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in flags {
            let Some((k, v)) = f.split_once('=') else {
                return Err(FilterError::BadFormat);
            };
            map.entry(k.trim().to_lowercase())
                .or_default()
                .push(v.trim().to_owned());
        }
        Ok(Self(map))
    }

    /// Refuses keys not in `accepted`.
    ///
    /// # Errors
    /// Docker's `Invalid filter 'KEY'`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(FilterError::UnknownKey(k.clone())),
            None => Ok(()),
        }
    }

    /// The values of `key` (none when absent).
    #[must_use]
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `key` was given.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// moby's `Args.Match`: true when `key` is absent, or a value equals `source` or, as an
    /// unanchored regular expression, matches it.
    #[must_use]
    pub fn matches(&self, key: &str, source: &str) -> bool {
        let values = self.get(key);
        values.is_empty()
            || values
                .iter()
                .any(|v| v == source || regex::Regex::new(v).is_ok_and(|re| re.is_match(source)))
    }

    /// moby's label filter against `labels`: each `key` or `key=value` must hold (labels AND,
    /// unlike other keys); `negated` are the `label!=` values, which must not hold.
    #[must_use]
    pub fn labels_match(
        wanted: &[String],
        negated: &[String],
        labels: &BTreeMap<String, String>,
    ) -> bool {
        let holds = |w: &String| match w.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
            None => labels.contains_key(w.as_str()),
        };
        wanted.iter().all(holds) && !negated.iter().any(holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(flags: &[&str]) -> Filters {
        Filters::parse(&flags.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn same_key_values_collect() {
        let x = f(&["name=a", "Name = b", "status=running"]);
        assert_eq!(x.get("name"), ["a", "b"]);
        assert!(x.contains("status") && !x.contains("id"));
        assert!(x.get("id").is_empty());
    }

    #[test]
    fn errors_are_dockers() {
        let e = Filters::parse(&["nope".into()]).unwrap_err().to_string();
        assert_eq!(e, "bad format of filter (expected name=value)");
        let e = f(&["colour=red"])
            .validate(&["name"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Error response from daemon: Invalid filter 'colour'");
        assert!(f(&["name=x"]).validate(&["name"]).is_ok());
    }

    #[test]
    fn match_is_exact_or_regex() {
        let x = f(&["name=web", "name=^/db$"]);
        assert!(x.matches("name", "/web-1"));
        assert!(x.matches("name", "/db"));
        assert!(!x.matches("name", "/db2"));
        assert!(f(&[]).matches("name", "/anything"));
        // An invalid regex still matches exactly.
        assert!(f(&["name=a(b"]).matches("name", "a(b"));
    }

    #[test]
    fn labels() {
        let l: BTreeMap<String, String> = [("color".to_owned(), "blue".to_owned())].into();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(Filters::labels_match(&s(&["color"]), &[], &l));
        assert!(Filters::labels_match(&s(&["color=blue"]), &[], &l));
        assert!(!Filters::labels_match(&s(&["color=red"]), &[], &l));
        assert!(!Filters::labels_match(&s(&["color", "size"]), &[], &l));
        assert!(!Filters::labels_match(&[], &s(&["color"]), &l));
        assert!(Filters::labels_match(&[], &s(&["size"]), &l));
    }
}
