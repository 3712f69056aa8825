//! Word handling shared by the parser and the executor, with Docker's (moby `shell.Lex`) rules:
//! [`split_words`] cuts arguments at unquoted blanks keeping quotes, and [`expand`] processes
//! one word: quotes removed, the escape character honoured, `$VAR`, `${VAR}`, `${VAR:-x}`,
//! `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`, `${VAR:?msg}` substituted. Pure functions; no I/O.

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${` without its `}`.
    #[error("missing '}}' in `{word}`")]
    Unclosed {
        /// The word.
        word: String,
    },
    /// `${NAME:?message}` with `NAME` unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message (Docker's default: `is not allowed to be unset`).
        message: String,
    },
    /// `${...}` with an operator Docker does not know.
    #[error("unsupported modifier ({modifier}) in substitution `{word}`")]
    Modifier {
        /// The character after the name.
        modifier: char,
        /// The word.
        word: String,
    },
}

/// Splits at unquoted, unescaped blanks; quotes and escapes stay in the words (moby's
/// `parseWords`), for `ENV a="b c" d=e`, `LABEL`, `ARG`, `EXPOSE` and flags.
#[must_use]
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            word.push(c);
            if let Some(n) = chars.next() {
                word.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.push(c);
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Processes one word: quotes removed, escapes honoured, variables substituted from `lookup`
/// (unset ones become empty).
///
/// # Errors
/// An unclosed `${`, an unknown modifier, or a `${VAR:?}` whose variable is unset.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let chars: Vec<char> = word.chars().collect();
    let mut p = Processor {
        chars: &chars,
        pos: 0,
        escape,
        lookup,
        word,
    };
    p.process(None)
}

struct Processor<'a> {
    chars: &'a [char],
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    word: &'a str,
}

impl Processor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Until the end, or `stop` (unquoted) for the word inside `${VAR:-word}`.
    fn process(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                return Ok(out);
            }
            self.pos += 1;
            if c == self.escape {
                if let Some(n) = self.peek() {
                    out.push(n);
                    self.pos += 1;
                } else {
                    out.push(c);
                }
            } else if c == '\'' {
                while let Some(q) = self.peek() {
                    self.pos += 1;
                    if q == '\'' {
                        break;
                    }
                    out.push(q);
                }
            } else if c == '"' {
                out.push_str(&self.double_quoted()?);
            } else if c == '$' {
                out.push_str(&self.variable()?);
            } else {
                out.push(c);
            }
        }
        if stop.is_some() {
            return Err(ExpandError::Unclosed {
                word: self.word.to_owned(),
            });
        }
        Ok(out)
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '"' {
                return Ok(out);
            }
            if c == self.escape {
                match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        out.push(n);
                        self.pos += 1;
                    }
                    _ => out.push(c),
                }
            } else if c == '$' {
                out.push_str(&self.variable()?);
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn variable(&mut self) -> Result<String, ExpandError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        let unclosed = || ExpandError::Unclosed {
            word: self.word.to_owned(),
        };
        let value = (self.lookup)(&name);
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                Ok(value.unwrap_or_default())
            }
            Some(':') => {
                self.pos += 1;
                let op = self.peek().ok_or_else(unclosed)?;
                self.pos += 1;
                let word = self.process(Some('}'))?;
                self.pos += 1;
                let set = value.as_deref().is_some_and(|v| !v.is_empty());
                match op {
                    '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    '?' if set => Ok(value.unwrap_or_default()),
                    '?' => Err(ExpandError::Required {
                        name,
                        message: if word.is_empty() {
                            "is not allowed to be unset".into()
                        } else {
                            word
                        },
                    }),
                    other => Err(ExpandError::Modifier {
                        modifier: other,
                        word: self.word.to_owned(),
                    }),
                }
            }
            Some(op @ ('-' | '+' | '?')) => {
                self.pos += 1;
                let word = self.process(Some('}'))?;
                self.pos += 1;
                match op {
                    '-' => Ok(value.unwrap_or(word)),
                    '+' => Ok(if value.is_some() { word } else { String::new() }),
                    _ => value.ok_or(ExpandError::Required {
                        name,
                        message: if word.is_empty() {
                            "is not allowed to be unset".into()
                        } else {
                            word
                        },
                    }),
                }
            }
            Some(other) => Err(ExpandError::Modifier {
                modifier: other,
                word: self.word.to_owned(),
            }),
            None => Err(unclosed()),
        }
    }
}

/// Names of the variables `word` refers to (`$A`, `${B:-x}`), for cache keys and for which
/// build arguments an instruction uses.
#[must_use]
pub fn referenced(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = word.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = i + 1 + usize::from(b.get(i + 1) == Some(&b'{'));
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                out.push(word[start..j].to_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "E" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    #[rstest]
    #[case("$A", "a")]
    #[case("${A}", "a")]
    #[case("pre${A}post", "preapost")]
    #[case("$Apost", "")]
    #[case("${U:-x}", "x")]
    #[case("${E:-x}", "x")]
    #[case("${E-x}", "")]
    #[case("${U-x}", "x")]
    #[case("${A:-x}", "a")]
    #[case("${A:+x}", "x")]
    #[case("${E:+x}", "")]
    #[case("${E+x}", "x")]
    #[case("${U:+x}", "")]
    #[case("${U:-$A}", "a")]
    #[case("'$A'", "$A")]
    #[case("\"$A\"", "a")]
    #[case("\"a b\"", "a b")]
    #[case("\\$A", "$A")]
    #[case("\"\\$A\"", "$A")]
    #[case("\"\\n\"", "\\n")]
    #[case("$", "$")]
    #[case("a$", "a$")]
    #[case("$SP", "x y")]
    fn expansion(#[case] word: &str, #[case] want: &str) {
        assert_eq!(expand(word, '\\', &env).unwrap(), want);
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
        assert_eq!(expand("c:\\dir", '`', &env).unwrap(), "c:\\dir");
    }

    #[rstest]
    #[case("${A")]
    #[case("${U:?}")]
    #[case("${A%x}")]
    fn expansion_errors(#[case] word: &str) {
        assert!(expand(word, '\\', &env).is_err());
    }

    #[rstest]
    #[case("a b  c", &["a", "b", "c"])]
    #[case("a=\"b c\" d='e f'", &["a=\"b c\"", "d='e f'"])]
    #[case("a\\ b c", &["a\\ b", "c"])]
    fn words(#[case] s: &str, #[case] want: &[&str]) {
        assert_eq!(split_words(s, '\\'), want);
    }

    #[test]
    fn references() {
        assert_eq!(referenced("$A ${B:-$C} $ x"), ["A", "B", "C"]);
    }
}
