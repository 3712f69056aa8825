//! `run --env-file FILE`: Docker's env file format (docker/cli `pkg/kvfile`). One variable a
//! line: `VAR=value` (the value kept as written, spaces and quotes included), `VAR` alone takes
//! the host's value (and is left out when the host has none), `#` starts a comment line, blank
//! lines are skipped. Leading white space is ignored; a name with white space is refused. Each
//! line must be UTF-8 and at most [`MAX_LINE`] bytes (Docker's `bufio.Scanner` token limit).
//!
//! Unlike Docker, which reads until the end whatever the file is (`/dev/zero` never ends), a file
//! is read only when it is a regular file or a pipe (`--env-file <(…)`), and at most
//! [`MAX_FILE_SIZE`] bytes of it.
//!
//! It reads the files it is given and calls nothing else in the crate.

use std::io::Read as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

/// The longest line: Docker reads env files with a `bufio.Scanner`, whose token limit
/// (`bufio.MaxScanTokenSize`, 64 KiB) includes the line's newline.
pub const MAX_LINE: usize = 64 * 1024 - 1;

/// The most read from one env file. `execve` takes at most a quarter of the stack limit for the
/// arguments and environment together (2 MiB with the usual 8 MiB), so no working env file is
/// near this; it stops `/dev/zero`-like input long before it costs the host anything.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// A line Docker's parser refuses.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not UTF-8 (Docker prints the line's bytes).
    #[error("invalid utf8 bytes at line {line}: {}", go_bytes(bytes))]
    Utf8 {
        /// 1-based line number.
        line: usize,
        /// The line.
        bytes: Vec<u8>,
    },
    /// Longer than [`MAX_LINE`] (Docker: `bufio.Scanner: token too long`).
    #[error("line {line} is longer than {MAX_LINE} bytes")]
    TooLong {
        /// 1-based line number.
        line: usize,
    },
    /// The line starts with `=`.
    #[error("no variable name on line '{line}'")]
    NoName {
        /// The line, leading white space removed.
        line: String,
    },
    /// The name has a space or a tab.
    #[error("variable '{variable}' contains whitespaces")]
    Whitespace {
        /// The name.
        variable: String,
    },
}

/// Errors reading an env file.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// The file cannot be opened.
    #[error("cannot open env file `{}`", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A directory, a device or a socket.
    #[error("invalid env file ({}): it is a {kind}, not a file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// More than [`MAX_FILE_SIZE`] bytes.
    #[error("invalid env file ({}): it is larger than {MAX_FILE_SIZE} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Reading failed.
    #[error("cannot read env file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line Docker would refuse.
    #[error("invalid env file ({})", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line's fault.
        #[source]
        source: LineError,
    },
}

/// Go's `%v` of a byte slice: `[65 61 255]`.
fn go_bytes(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

/// Parses the bytes of one env file; `host` looks up a bare `VAR`.
///
/// # Errors
/// Docker's refusals, as [`LineError`].
pub fn parse(
    bytes: &[u8],
    host: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, LineError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut out = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let number = index + 1;
        if raw.len() > MAX_LINE {
            return Err(LineError::TooLong { line: number });
        }
        // As Go's `bufio.ScanLines`: a `\r` before the newline is dropped.
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|_| LineError::Utf8 {
            line: number,
            bytes: raw.to_vec(),
        })?;
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if variable.is_empty() {
            return Err(LineError::NoName {
                line: line.to_owned(),
            });
        }
        if variable.contains([' ', '\t']) {
            return Err(LineError::Whitespace {
                variable: variable.to_owned(),
            });
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

/// Reads at most [`MAX_FILE_SIZE`] bytes of `path`, when it is a regular file or a pipe.
///
/// # Errors
/// See [`EnvFileError`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, EnvFileError> {
    let open = |source| EnvFileError::Open {
        path: path.to_owned(),
        source,
    };
    let read = |source| EnvFileError::Read {
        path: path.to_owned(),
        source,
    };
    // Opening a device can have effects (a tape rewinds, a modem hangs up): look first. A FIFO
    // is opened as the user asked, and may wait for its writer, as in Docker.
    let kind = fs_err::metadata(path).map_err(open)?.file_type();
    let not_a_file = |kind| EnvFileError::NotAFile {
        path: path.to_owned(),
        kind,
    };
    if kind.is_dir() {
        return Err(not_a_file("directory"));
    } else if kind.is_char_device() {
        return Err(not_a_file("character device"));
    } else if kind.is_block_device() {
        return Err(not_a_file("block device"));
    } else if kind.is_socket() {
        return Err(not_a_file("socket"));
    }
    let file = fs_err::File::open(path).map_err(open)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(EnvFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Reads every `--env-file` in order; their variables come before `-e`'s, as in Docker.
///
/// # Errors
/// An unreadable file or a bad line, naming the file.
pub fn read_all(
    files: &[impl AsRef<Path>],
    host: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, EnvFileError> {
    let mut out = Vec::new();
    for f in files {
        let path = f.as_ref();
        let bytes = read_bounded(path)?;
        out.extend(parse(&bytes, host).map_err(|source| EnvFileError::Invalid {
            path: path.to_owned(),
            source,
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn host(k: &str) -> Option<String> {
        (k == "USER").then(|| "alice".to_owned())
    }

    #[test]
    fn docker_env_file_format() {
        let text = "\u{feff}# comment\nVAR1=value1\r\n\n  VAR2= spaced 'quoted' \nUSER\nUNSET_ON_HOST\nEMPTY=\nA=b=c\n\t# indented comment\nLAST=no newline";
        assert_eq!(
            parse(text.as_bytes(), &host).unwrap(),
            [
                "VAR1=value1",
                "VAR2= spaced 'quoted' ",
                "USER=alice",
                "EMPTY=",
                "A=b=c",
                "LAST=no newline"
            ]
        );
    }

    #[rstest]
    #[case::space_in_name(b"MY VAR=1\n", "variable 'MY VAR' contains whitespaces")]
    #[case::tab_in_bare_name(b"A\tB\n", "variable 'A\tB' contains whitespaces")]
    #[case::no_name(b"=x\n", "no variable name on line '=x'")]
    #[case::no_name_indented(b"A=1\n  =x y\n", "no variable name on line '=x y'")]
    #[case::not_utf8(b"A=1\nB=\xff\n", "invalid utf8 bytes at line 2: [66 61 255]")]
    fn bad_lines_are_refused_as_docker(#[case] bytes: &[u8], #[case] message: &str) {
        assert_eq!(parse(bytes, &host).unwrap_err().to_string(), message);
    }

    #[test]
    fn lines_are_limited_as_dockers_scanner() {
        let mut ok = b"A=".to_vec();
        ok.resize(MAX_LINE, b'x');
        ok.push(b'\n');
        assert_eq!(parse(&ok, &host).unwrap()[0].len(), MAX_LINE);
        let mut long = b"B=1\nA=".to_vec();
        long.resize(4 + MAX_LINE + 1, b'x');
        assert_eq!(
            parse(&long, &host).unwrap_err().to_string(),
            format!("line 2 is longer than {MAX_LINE} bytes")
        );
    }

    #[test]
    fn files_are_named_in_errors() {
        let t = tempfile::tempdir().unwrap();
        let good = t.path().join("good.env");
        let bad = t.path().join("bad.env");
        fs_err::write(&good, "A=1\n").unwrap();
        fs_err::write(&bad, "B C\n").unwrap();
        assert_eq!(read_all(&[&good], &host).unwrap(), ["A=1"]);
        let e = anyhow::Error::from(read_all(&[&good, &bad], &host).unwrap_err());
        assert_eq!(
            format!("{e:#}"),
            format!(
                "invalid env file ({}): variable 'B C' contains whitespaces",
                bad.display()
            )
        );
        let e = format!(
            "{:#}",
            anyhow::Error::from(read_all(&[t.path().join("nope")], &host).unwrap_err())
        );
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn only_files_and_pipes_are_read_and_only_so_much() {
        let t = tempfile::tempdir().unwrap();
        let e = read_all(&[t.path()], &host).unwrap_err();
        assert!(
            matches!(
                e,
                EnvFileError::NotAFile {
                    kind: "directory",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_all(&["/dev/zero"], &host).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid env file (/dev/zero): it is a character device, not a file"
        );
        let big = t.path().join("big.env");
        let f = fs_err::File::create(&big).unwrap();
        f.set_len(MAX_FILE_SIZE + 1).unwrap();
        assert!(matches!(
            read_all(&[&big], &host).unwrap_err(),
            EnvFileError::TooLarge { .. }
        ));
        // A pipe, as `--env-file <(…)` gives: read to its end, within the limit.
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs_err::write(fifo, "P=1\n").unwrap())
        };
        assert_eq!(read_all(&[&fifo], &host).unwrap(), ["P=1"]);
        writer.join().unwrap();
    }
}
