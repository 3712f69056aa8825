//! `.dockerignore` with Docker's rules (moby `patternmatcher`): one pattern a line, `#`
//! comments, a leading `!` for an exception, paths cleaned and relative to the context root,
//! `*` and `?` within one path component, `**` across any number of them, and a pattern that
//! matches a directory matching everything below it. The last matching pattern decides. Pure
//! code; the context walker ([`super::context`]) asks [`Matcher::excluded`] per path.

use regex::Regex;

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    exception: bool,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// A pattern that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("invalid .dockerignore pattern `{pattern}`")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Cause.
    #[source]
    pub source: regex::Error,
}

/// Go's `filepath.Clean` for slash paths, with a leading `/` dropped (patterns are relative).
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                // A character class, as in Go's filepath.Match (`[!a]` negates).
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'!') || chars.get(j) == Some(&'^') {
                    class.push('^');
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                    }
                    if matches!(chars[j], '[' | '\\' | '&' | '~') {
                        class.push('\\');
                    }
                    class.push(chars[j]);
                    j += 1;
                }
                class.push(']');
                re.push_str(&class);
                i = j;
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|source| PatternError {
        pattern: pattern.to_owned(),
        source,
    })
}

/// A COPY source glob (`src/*.rs`) as a regex over slash-separated relative paths, with the
/// same rules as `.dockerignore` patterns (Go's `filepath.Match` per component).
///
/// # Errors
/// An invalid pattern.
pub fn glob(pattern: &str) -> Result<Regex, PatternError> {
    compile(&clean(pattern))
}

impl Matcher {
    /// Compiles the text of a `.dockerignore`.
    ///
    /// # Errors
    /// A pattern that is not a valid glob.
    pub fn new(text: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let p = clean(p);
            if p == "." && !exception {
                // `.` would exclude the whole context; Docker ignores it.
                continue;
            }
            patterns.push(Pattern {
                regex: compile(&p)?,
                exception,
            });
        }
        Ok(Self { patterns })
    }

    /// Adds an exception (`!path`), as Docker's CLI does for the Dockerfile and `.dockerignore`.
    pub fn keep(&mut self, path: &str) {
        if let Ok(regex) = compile(&regex_literal(&clean(path))) {
            self.patterns.push(Pattern {
                regex,
                exception: true,
            });
        }
    }

    /// True when the context-relative `path` (slash-separated) is excluded.
    #[must_use]
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // An exception only matters once excluded, an exclusion only when not yet.
            if p.exception != matched {
                continue;
            }
            let mut hit = p.regex.is_match(&path);
            if !hit && parents.len() > 1 {
                for i in 1..parents.len() {
                    if p.regex.is_match(&parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exception;
            }
        }
        matched
    }

    /// True when some exception could re-include something below an excluded directory, so
    /// the walker must look inside it.
    #[must_use]
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Escapes glob metacharacters so a path matches only itself.
fn regex_literal(p: &str) -> String {
    p.chars()
        .flat_map(|c| {
            if matches!(c, '*' | '?' | '[' | '\\') {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("*.log", "a.log", true)]
    #[case("*.log", "d/a.log", false)]
    #[case("**/*.log", "d/e/a.log", true)]
    #[case("**/*.log", "a.log", true)]
    #[case("d", "d/x/y", true)]
    #[case("/d/", "d/x", true)]
    #[case("d/**", "d/x/y", true)]
    #[case("d/**/z", "d/z", true)]
    #[case("d/**/z", "d/a/b/z", true)]
    #[case("a?c", "abc", true)]
    #[case("a?c", "a/c", false)]
    #[case("[a-c].txt", "b.txt", true)]
    #[case("[!a-c].txt", "b.txt", false)]
    #[case("./x/../y", "y", true)]
    #[case("\\*", "*", true)]
    #[case("\\*", "a", false)]
    #[case("#comment", "#comment", false)]
    fn single_patterns(#[case] pattern: &str, #[case] path: &str, #[case] want: bool) {
        assert_eq!(
            Matcher::new(pattern).unwrap().excluded(path),
            want,
            "{pattern} {path}"
        );
    }

    #[rstest]
    #[case("*.md\n!README.md", "README.md", false)]
    #[case("*.md\n!README.md", "CHANGES.md", true)]
    #[case("*.md\n!README.md\nREADME*", "README.md", true)]
    #[case("docs\n!docs/keep", "docs/keep", false)]
    #[case("docs\n!docs/keep", "docs/other", true)]
    #[case("**\n!src/**", "src/main.rs", false)]
    #[case("**\n!src/**", "Makefile", true)]
    fn exceptions(#[case] text: &str, #[case] path: &str, #[case] want: bool) {
        assert_eq!(Matcher::new(text).unwrap().excluded(path), want);
    }

    #[test]
    fn keep_wins_last() {
        let mut m = Matcher::new("Dockerfile\n*").unwrap();
        m.keep("Dockerfile");
        assert!(!m.excluded("Dockerfile"));
        assert!(m.excluded("other"));
        assert!(m.has_exceptions());
    }
}
