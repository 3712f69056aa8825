//! `run --env-file FILE`: Docker's env file format (`opts.ParseEnvFile`). One variable a line:
//! `VAR=value` (the value kept as written, spaces and quotes included), `VAR` alone takes the
//! host's value (and is left out when the host has none), `#` starts a comment line, blank
//! lines are skipped. Leading white space is ignored; a name with white space is refused.

use std::path::Path;

use anyhow::Context as _;

/// Parses the text of one env file; `host` looks up a bare `VAR`.
///
/// # Errors
/// Docker's `poorly formatted environment: …` for a bad name.
pub fn parse(text: &str, host: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if variable.contains([' ', '\t']) {
            anyhow::bail!(
                "poorly formatted environment: variable '{variable}' contains whitespaces"
            );
        }
        if variable.is_empty() {
            anyhow::bail!("poorly formatted environment: no variable name on line '{line}'");
        }
        match value {
            Some(v) => out.push(format!("{variable}={v}")),
            None => {
                if let Some(v) = host(variable) {
                    out.push(format!("{variable}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// Reads every `--env-file` in order; their variables come before `-e`'s, as in Docker.
///
/// # Errors
/// An unreadable file or a bad line, naming the file.
pub fn read_all(
    files: &[impl AsRef<Path>],
    host: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let f = f.as_ref();
        let bytes = fs_err::read(f)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("env file {} contains invalid utf8 bytes", f.display()))?;
        out.extend(parse(&text, host).with_context(|| format!("env file {}", f.display()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(k: &str) -> Option<String> {
        (k == "USER").then(|| "alice".to_owned())
    }

    #[test]
    fn docker_env_file_format() {
        let text = "\u{feff}# comment\nVAR1=value1\n\n  VAR2= spaced 'quoted' \nUSER\nUNSET_ON_HOST\nEMPTY=\nA=b=c\n";
        assert_eq!(
            parse(text, &host).unwrap(),
            [
                "VAR1=value1",
                "VAR2= spaced 'quoted' ",
                "USER=alice",
                "EMPTY=",
                "A=b=c"
            ]
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let e = parse("MY VAR=1\n", &host).unwrap_err().to_string();
        assert_eq!(
            e,
            "poorly formatted environment: variable 'MY VAR' contains whitespaces"
        );
        let e = parse("=1\n", &host).unwrap_err().to_string();
        assert_eq!(
            e,
            "poorly formatted environment: no variable name on line '=1'"
        );
    }

    #[test]
    fn files_are_named_in_errors() {
        let t = tempfile::tempdir().unwrap();
        let good = t.path().join("good.env");
        let bad = t.path().join("bad.env");
        std::fs::write(&good, "A=1\n").unwrap();
        std::fs::write(&bad, "B C\n").unwrap();
        assert_eq!(read_all(&[&good], &host).unwrap(), ["A=1"]);
        let e = format!("{:#}", read_all(&[&good, &bad], &host).unwrap_err());
        assert!(
            e.contains("bad.env") && e.contains("contains whitespaces"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            read_all(&[t.path().join("nope")], &host).unwrap_err()
        );
        assert!(e.contains("nope"), "{e}");
    }
}
