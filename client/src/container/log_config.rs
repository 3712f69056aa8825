//! A container's logging driver and its options (`--log-driver`, `--log-opt`, and `daemon.json`'s
//! `log-driver` and `log-opts` as defaults): Docker's `json-file` (the default), `local` (written
//! here in json-file's format, with local's rotation defaults and no compression) and `none`.
//! Owns the options (Docker's `HostConfig.LogConfig`), the rotating writer the container's owner
//! process writes through, and the list of files a reader goes through, oldest first.
//!
//! Rotation is json-file's: with `max-size`, a file that would grow past it is renamed to
//! `<log>.1` (older ones shift to `.2`, … up to `max-file - 1`; the oldest goes) and a new one is
//! started; with `max-file=1` the file is emptied instead.
//!
//! May call nothing else of the crate.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Docker's `local` driver defaults (its `max-size` and `max-file`).
const LOCAL_MAX_SIZE: u64 = 20 << 20;
const LOCAL_MAX_FILE: u32 = 5;

/// A `--log-driver` or `--log-opt` berth cannot honour (Docker's messages where it has them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogConfigError {
    /// A driver other than json-file, local and none.
    #[error("berth supports the json-file, local and none logging drivers, not `{0}`")]
    Driver(String),
    /// `--log-opt` without `=`.
    #[error("invalid log opt `{0}`: use KEY=VALUE")]
    Syntax(String),
    /// An option the driver does not know.
    #[error("unknown log opt '{key}' for {driver} log driver")]
    Unknown {
        /// The option.
        key: String,
        /// The driver.
        driver: String,
    },
    /// A bad `max-size` or `max-file`.
    #[error("{0}")]
    Value(String),
}

/// Docker's `HostConfig.LogConfig`: the driver and its options, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    /// `json-file`, `local` or `none`.
    #[serde(rename = "Type")]
    pub driver: String,
    /// `max-size`, `max-file`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            driver: "json-file".into(),
            config: BTreeMap::new(),
        }
    }
}

impl LogConfig {
    /// The container's configuration from `--log-driver` (`driver`) and `--log-opt`s (`opts`),
    /// over the daemon's defaults (`default_driver`, `default_opts`), which apply to containers
    /// that use the default driver, as Docker applies them.
    ///
    /// # Errors
    /// An unsupported driver, a malformed or unknown option, a bad size or count.
    pub fn new(
        driver: Option<&str>,
        opts: &[String],
        default_driver: Option<&str>,
        default_opts: &BTreeMap<String, String>,
    ) -> Result<Self, LogConfigError> {
        let default_driver = default_driver.unwrap_or("json-file");
        let driver = driver.unwrap_or(default_driver).to_owned();
        let mut config = if driver == default_driver {
            default_opts.clone()
        } else {
            BTreeMap::new()
        };
        for opt in opts {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| LogConfigError::Syntax(opt.clone()))?;
            config.insert(k.to_owned(), v.to_owned());
        }
        let cfg = Self { driver, config };
        cfg.limits()?;
        Ok(cfg)
    }

    /// Whether `logs` can read what this driver keeps.
    #[must_use]
    pub fn readable(&self) -> bool {
        self.driver != "none"
    }

    /// `(max-size, max-file)`: the size a file may reach before it is rotated (`None`: no
    /// rotation) and how many files are kept, the current one included.
    ///
    /// # Errors
    /// As [`LogConfig::new`].
    pub fn limits(&self) -> Result<(Option<u64>, u32), LogConfigError> {
        let (default_size, default_files) = match self.driver.as_str() {
            "json-file" => (None, 1),
            "local" => (Some(LOCAL_MAX_SIZE), LOCAL_MAX_FILE),
            "none" => (None, 1),
            other => return Err(LogConfigError::Driver(other.to_owned())),
        };
        let mut size = default_size;
        let mut files = default_files;
        for (key, value) in &self.config {
            match (self.driver.as_str(), key.as_str()) {
                ("json-file" | "local", "max-size") => {
                    let bytes = crate::format::ram_in_bytes(value)
                        .and_then(|b| u64::try_from(b).ok())
                        .filter(|b| *b > 0)
                        .ok_or_else(|| {
                            LogConfigError::Value(format!(
                            "max-size must be a positive number of bytes (e.g. 10m), not `{value}`"
                        ))
                        })?;
                    size = Some(bytes);
                }
                ("json-file" | "local", "max-file") => {
                    files = match value.parse::<i64>() {
                        Ok(n) if n >= 1 => u32::try_from(n).unwrap_or(u32::MAX),
                        Ok(_) => {
                            return Err(LogConfigError::Value(
                                "max-file cannot be less than 1".into(),
                            ))
                        }
                        Err(_) => {
                            return Err(LogConfigError::Value(format!(
                                "max-file must be a number, not `{value}`"
                            )))
                        }
                    };
                }
                _ => {
                    return Err(LogConfigError::Unknown {
                        key: key.clone(),
                        driver: self.driver.clone(),
                    })
                }
            }
        }
        Ok((size, files))
    }
}

/// The owner process's log: appends entries and rotates by the container's options; with
/// `none`, keeps nothing.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

impl LogWriter {
    /// Opens (appending to) the log at `path` for `config`.
    ///
    /// # Errors
    /// The file cannot be opened; bad options.
    pub fn open(path: &Path, config: &LogConfig) -> std::io::Result<Self> {
        let (max_size, max_file) = config.limits().map_err(std::io::Error::other)?;
        let file = if config.readable() {
            Some(append(path)?)
        } else {
            None
        };
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_size,
            max_file,
        })
    }

    /// Whether entries are kept (false with the `none` driver).
    #[must_use]
    pub fn keeps(&self) -> bool {
        self.file.is_some()
    }

    /// Appends one entry (a whole JSON line), rotating first when it would pass `max-size`.
    ///
    /// # Errors
    /// Writing or rotating failed.
    pub fn write_entry(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let len = line.len() as u64;
        if self
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + len > max)
        {
            self.rotate()?;
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(line)?;
        }
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_file <= 1 {
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        // The oldest goes; the others move up one; the current one becomes `.1`.
        let _ = std::fs::remove_file(numbered(&self.path, self.max_file - 1));
        for i in (1..self.max_file - 1).rev() {
            match std::fs::rename(numbered(&self.path, i), numbered(&self.path, i + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))?;
        self.file = Some(append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// `<log>.<n>`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The rotated files of the log at `path`, oldest first (`.N`, …, `.1`), without the current one.
#[must_use]
pub fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..)
        .map(|n| numbered(path, n))
        .take_while(|p| p.exists())
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_follow_docker() {
        let none = BTreeMap::new();
        let c = LogConfig::new(None, &[], None, &none).unwrap();
        assert_eq!(c, LogConfig::default());
        assert_eq!(c.limits().unwrap(), (None, 1));
        let c = LogConfig::new(None, &opts(&["max-size=10m", "max-file=3"]), None, &none).unwrap();
        assert_eq!(c.limits().unwrap(), (Some(10 << 20), 3));
        let c = LogConfig::new(Some("local"), &[], None, &none).unwrap();
        assert_eq!(c.limits().unwrap(), (Some(20 << 20), 5));
        assert!(!LogConfig::new(Some("none"), &[], None, &none)
            .unwrap()
            .readable());
        // The daemon's options go with the daemon's driver only.
        let daemon: BTreeMap<String, String> = [("max-size".into(), "1k".into())].into();
        let c = LogConfig::new(None, &[], Some("json-file"), &daemon).unwrap();
        assert_eq!(c.limits().unwrap(), (Some(1024), 1));
        let c = LogConfig::new(Some("none"), &[], Some("json-file"), &daemon).unwrap();
        assert!(c.config.is_empty());
        let c = LogConfig::new(None, &opts(&["max-size=2k"]), None, &daemon).unwrap();
        assert_eq!(c.limits().unwrap(), (Some(2048), 1));
        for (driver, o, want) in [
            (Some("syslog"), &[][..], "not `syslog`"),
            (None, &["max-size"][..], "use KEY=VALUE"),
            (
                None,
                &["max-size=0"][..],
                "max-size must be a positive number",
            ),
            (
                None,
                &["max-size=lots"][..],
                "max-size must be a positive number",
            ),
            (None, &["max-file=0"][..], "max-file cannot be less than 1"),
            (
                None,
                &["compress=true"][..],
                "unknown log opt 'compress' for json-file log driver",
            ),
            (Some("none"), &["max-size=1m"][..], "for none log driver"),
        ] {
            let e = LogConfig::new(driver, &opts(o), None, &none).unwrap_err();
            assert!(e.to_string().contains(want), "{o:?}: {e}");
        }
    }

    #[test]
    fn files_rotate_and_the_oldest_goes() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let config = LogConfig::new(
            None,
            &opts(&["max-size=10", "max-file=3"]),
            None,
            &BTreeMap::new(),
        )
        .unwrap();
        let mut w = LogWriter::open(&path, &config).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            w.write_entry(line.as_bytes()).unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "dddddd\n");
        assert_eq!(rotated(&path), [numbered(&path, 2), numbered(&path, 1)]);
        assert_eq!(read(&numbered(&path, 1)), "cccccc\n");
        assert_eq!(read(&numbered(&path, 2)), "bbbbbb\n");
        assert!(!numbered(&path, 3).exists());
        // One file: emptied instead; `none`: nothing written.
        let one = t.path().join("one.log");
        let config = LogConfig::new(None, &opts(&["max-size=10"]), None, &BTreeMap::new()).unwrap();
        let mut w = LogWriter::open(&one, &config).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n"] {
            w.write_entry(line.as_bytes()).unwrap();
        }
        assert_eq!(read(&one), "bbbbbb\n");
        assert!(rotated(&one).is_empty());
        let gone = t.path().join("none.log");
        let config = LogConfig::new(Some("none"), &[], None, &BTreeMap::new()).unwrap();
        LogWriter::open(&gone, &config)
            .unwrap()
            .write_entry(b"x\n")
            .unwrap();
        assert!(!gone.exists());
    }
}
