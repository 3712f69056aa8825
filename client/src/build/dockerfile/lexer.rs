//! Dockerfile text → logical lines: parser directives (`# escape=`, `# syntax=`), comments,
//! line continuations and heredoc bodies, with the line and column where each instruction
//! starts. Knows nothing about what instructions mean beyond which ones take heredocs
//! (`RUN`, `COPY`, `ADD`); [`super::parser`] turns logical lines into instructions.

use super::ParseError;

/// A heredoc collected after an instruction line: `<<EOF`, `<<-EOF` (leading tabs stripped),
/// `<<"EOF"` / `<<'EOF'` (no variable expansion in the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, unquoted.
    pub name: String,
    /// The body, each line ending in `\n`.
    pub content: String,
    /// False when the delimiter was quoted.
    pub expand: bool,
}

/// One instruction's text with continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based line of the instruction keyword.
    pub line: usize,
    /// 1-based column of the keyword.
    pub column: usize,
    /// The keyword as written (`run`, `RUN`).
    pub keyword: String,
    /// Column where the arguments start on the first line.
    pub args_column: usize,
    /// Everything after the keyword, continuations joined (escape + newline removed).
    pub args: String,
    /// Heredoc bodies, in the order their `<<` markers appear.
    pub heredocs: Vec<Heredoc>,
}

/// The directives at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# escape=` (default `\`).
    pub escape: char,
    /// `# syntax=`: recorded, not acted on (berth has one frontend).
    pub syntax: Option<String>,
}

/// Parses `# name=value` when `line` is a directive.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?.trim_start();
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.trim().to_owned()))
}

/// Heredoc markers (`<<[-]WORD`, quoted or not) in an instruction's arguments, in order.
/// Returns `(name, expand, strip_tabs)`.
#[must_use]
pub fn heredoc_markers(args: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let bytes = args.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'<'
                && bytes.get(i + 1) == Some(&b'<')
                && bytes.get(i + 2) != Some(&b'<')
                && (i == 0 || bytes[i - 1] != b'<') =>
            {
                let mut j = i + 2;
                let strip = bytes.get(j) == Some(&b'-');
                if strip {
                    j += 1;
                }
                let q = match bytes.get(j) {
                    Some(&b) if b == b'"' || b == b'\'' => {
                        j += 1;
                        Some(b)
                    }
                    _ => None,
                };
                let start = j;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'.')
                {
                    j += 1;
                }
                if j > start && q.is_none_or(|q| bytes.get(j) == Some(&q)) {
                    out.push((args[start..j].to_owned(), q.is_none(), strip));
                    i = j + usize::from(q.is_some());
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// Splits `text` into directives and logical lines.
///
/// # Errors
/// An invalid `escape` directive, a continuation at the end of the file, a heredoc without its
/// terminator.
pub fn lex(text: &str) -> Result<(Directives, Vec<LogicalLine>), ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut directives = Directives {
        escape: '\\',
        syntax: None,
    };
    let mut i = 0;
    // Directives only at the very top, before any other line (comments and blanks included).
    while i < lines.len() {
        let Some((name, value)) = directive(lines[i]) else {
            break;
        };
        match name.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError::new(
                            i + 1,
                            1,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => directives.syntax = Some(value),
            _ => {}
        }
        i += 1;
    }
    let esc = directives.escape;
    let mut out = Vec::new();
    while i < lines.len() {
        let raw = lines[i];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let column = raw.len() - trimmed.len() + 1;
        let start_line = i + 1;
        let kw_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let keyword = trimmed[..kw_end].to_owned();
        let after_kw = &trimmed[kw_end..];
        let args_column = column + kw_end + (after_kw.len() - after_kw.trim_start().len());
        let mut args = String::new();
        let mut current = after_kw.trim_start().to_owned();
        loop {
            let body = current.trim_end();
            if let Some(stripped) = body.strip_suffix(esc) {
                // A continuation: the next non-comment line joins this one.
                args.push_str(stripped);
                i += 1;
                loop {
                    let Some(next) = lines.get(i) else {
                        return Ok(finish(
                            directives,
                            out,
                            LogicalLine {
                                line: start_line,
                                column,
                                keyword,
                                args_column,
                                args: args.trim().to_owned(),
                                heredocs: Vec::new(),
                            },
                        ));
                    };
                    let t = next.trim_start();
                    if t.starts_with('#') || t.is_empty() {
                        // Comment and empty lines inside a continuation are dropped.
                        i += 1;
                        continue;
                    }
                    break;
                }
                current = lines[i].to_owned();
                continue;
            }
            args.push_str(&current);
            i += 1;
            break;
        }
        let args = args.trim().to_owned();
        let mut heredocs = Vec::new();
        if matches!(
            keyword.to_ascii_uppercase().as_str(),
            "RUN" | "COPY" | "ADD"
        ) {
            for (name, expand, strip) in heredoc_markers(&args) {
                let mut content = String::new();
                loop {
                    let Some(l) = lines.get(i) else {
                        return Err(ParseError::new(
                            start_line,
                            column,
                            format!("unterminated heredoc: no line `{name}` ends it"),
                        ));
                    };
                    i += 1;
                    let l = if strip { l.trim_start_matches('\t') } else { l };
                    if l == name {
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        out.push(LogicalLine {
            line: start_line,
            column,
            keyword,
            args_column,
            args,
            heredocs,
        });
    }
    Ok((directives, out))
}

fn finish(
    d: Directives,
    mut out: Vec<LogicalLine>,
    last: LogicalLine,
) -> (Directives, Vec<LogicalLine>) {
    out.push(last);
    (d, out)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn continuations_comments_and_directives() {
        let text = "# syntax=docker/dockerfile:1\n# escape=`\n\n# a comment\nFROM a\nRUN echo 1 `\n  # inside\n  && echo 2\n";
        let (d, lines) = lex(text).unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].line, 6);
        assert_eq!(lines[1].args, "echo 1   && echo 2");
    }

    #[test]
    fn a_directive_after_a_comment_is_a_comment() {
        let (d, _) = lex("# hello\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn heredocs_are_collected() {
        let text = "RUN <<EOF\necho a\necho b\nEOF\nCOPY <<-'X' /f\n\tline $A\n\tX\n";
        let (_, lines) = lex(text).unwrap();
        assert_eq!(lines[0].heredocs[0].content, "echo a\necho b\n");
        assert!(lines[0].heredocs[0].expand);
        assert_eq!(lines[1].heredocs[0].content, "line $A\n");
        assert!(!lines[1].heredocs[0].expand);
        assert_eq!(lines[1].line, 5);
    }

    #[rstest]
    #[case("cat <<EOF > f", &["EOF"])]
    #[case("<<-\"A\" <<B", &["A", "B"])]
    #[case("echo '<<EOF'", &[])]
    #[case("echo a<<<b", &[])]
    fn markers(#[case] args: &str, #[case] want: &[&str]) {
        let got: Vec<String> = heredoc_markers(args).into_iter().map(|m| m.0).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unterminated_heredoc_names_its_line() {
        let e = lex("FROM a\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
    }

    #[test]
    fn bad_escape() {
        let e = lex("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
