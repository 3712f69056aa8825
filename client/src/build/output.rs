//! `-o`/`--output`: the value (Docker's `type=oci|docker|tar|local,dest=PATH`), and for
//! `type=tar|local` the built image's root file system, flattened (whiteouts applied by the
//! overlay), as a tar stream or unpacked into a directory. The tree is walked by handles from
//! the root's with the export code (`containers_fs::append_tree_at`), as `berth export` does;
//! `type=oci|docker` need no code here (the archive code's `save` writes them). Calls
//! [`super::root`] (a scratch overlay of the image's layers) and the store.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::root::BuildRoot;
use super::{BuildError, Result};
use crate::containers_fs::{append_tree_at, RootDir};
use crate::store::{ImageRecord, Store};

/// What `-o` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// An OCI image layout tar (also a docker-archive).
    Oci,
    /// A `docker load` tar (also an OCI image layout).
    Docker,
    /// The root file system as a tar.
    Tar,
    /// The root file system in a directory.
    Local,
}

/// An `-o` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The format.
    pub kind: OutputKind,
    /// The file or directory; `None` is STDOUT.
    pub dest: Option<PathBuf>,
    /// `name=` references to tag the archive with, besides `-t`.
    pub names: Vec<String>,
}

/// An `-o` value berth cannot use.
#[derive(Debug, thiserror::Error)]
pub enum OutputSpecError {
    /// `type=` names an exporter berth does not have.
    #[error("output type `{kind}` is not supported by berth build: use type=oci, type=docker, type=tar or type=local")]
    Type {
        /// The type as written.
        kind: String,
    },
    /// A field berth does not know.
    #[error("invalid output `{value}`: unknown field `{field}`; expected type=oci|docker|tar|local,dest=PATH")]
    Field {
        /// The whole value.
        value: String,
        /// The field.
        field: String,
    },
    /// No `type=`.
    #[error("invalid output `{value}`: type=oci|docker|tar|local is required")]
    NoType {
        /// The whole value.
        value: String,
    },
    /// `type=local` without a directory.
    #[error("invalid output `{value}`: type=local needs dest=DIRECTORY")]
    NoDirectory {
        /// The whole value.
        value: String,
    },
}

impl OutputSpec {
    /// Parses Docker's `type=oci|docker|tar|local,dest=PATH[,name=REF]`, `PATH` (type=local)
    /// or `-` (a tar on STDOUT).
    ///
    /// # Errors
    /// An unknown type or field, no type, `type=local` without `dest`.
    pub fn parse(value: &str) -> std::result::Result<Self, OutputSpecError> {
        if value == "-" {
            return Ok(Self {
                kind: OutputKind::Tar,
                dest: None,
                names: Vec::new(),
            });
        }
        if !value.contains('=') {
            return Ok(Self {
                kind: OutputKind::Local,
                dest: Some(PathBuf::from(value)),
                names: Vec::new(),
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut names = Vec::new();
        for field in value.split(',') {
            match field.split_once('=') {
                Some(("type", t)) => {
                    kind = Some(match t {
                        "oci" => OutputKind::Oci,
                        "docker" => OutputKind::Docker,
                        "tar" => OutputKind::Tar,
                        "local" => OutputKind::Local,
                        other => {
                            return Err(OutputSpecError::Type {
                                kind: other.to_owned(),
                            })
                        }
                    });
                }
                Some(("dest", "-")) => dest = None,
                Some(("dest", d)) => dest = Some(PathBuf::from(d)),
                Some(("name", n)) => names.push(n.to_owned()),
                _ => {
                    return Err(OutputSpecError::Field {
                        value: value.to_owned(),
                        field: field.to_owned(),
                    })
                }
            }
        }
        let kind = kind.ok_or_else(|| OutputSpecError::NoType {
            value: value.to_owned(),
        })?;
        if kind == OutputKind::Local && dest.is_none() {
            return Err(OutputSpecError::NoDirectory {
                value: value.to_owned(),
            });
        }
        Ok(Self { kind, dest, names })
    }
}

/// Writes the root file system of `image` as a tar to `out`.
///
/// # Errors
/// A missing layer, the mount, I/O.
pub fn rootfs_tar(store: &Store, image: &ImageRecord, out: &mut dyn Write) -> Result<()> {
    let root = BuildRoot::mount(store, &image.layers)?;
    let path = root.rootfs();
    let dir = RootDir::open(&path)
        .map_err(|e| BuildError::setup("cannot open the image's root")(e.into()))?;
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, out));
    append_tree_at(&mut b, dir.fd(), OsStr::new("."), Path::new(""), false)
        .map_err(BuildError::io(&path))?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(BuildError::io(&path))?;
    Ok(())
}

/// Unpacks the root file system of `image` into the directory `dest` (created if missing;
/// files already there with the same names are replaced), owners, modes and mtimes kept.
///
/// # Errors
/// As [`rootfs_tar`]; a destination that cannot be written.
pub fn rootfs_dir(store: &Store, image: &ImageRecord, dest: &Path) -> Result<()> {
    fs_err::create_dir_all(dest).map_err(BuildError::io(dest))?;
    let (r, mut w) = std::io::pipe().map_err(BuildError::io(dest))?;
    let target = dest.to_owned();
    let unpacker = std::thread::spawn(move || -> std::io::Result<()> {
        let mut ar = tar::Archive::new(std::io::BufReader::new(r));
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_preserve_mtime(true);
        ar.set_overwrite(true);
        ar.unpack(&target)
    });
    let written = rootfs_tar(store, image, &mut w);
    drop(w);
    let unpacked = unpacker
        .join()
        .map_err(|_| BuildError::io(dest)(std::io::Error::other("the unpacker panicked")))?;
    // The unpacker's error first: when it stops, the walker only sees a broken pipe.
    unpacked.map_err(BuildError::io(dest))?;
    written
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("out", OutputKind::Local, Some("out"))]
    #[case("-", OutputKind::Tar, None)]
    #[case("type=docker,dest=img.tar", OutputKind::Docker, Some("img.tar"))]
    #[case("type=oci,dest=-", OutputKind::Oci, None)]
    #[case("type=tar", OutputKind::Tar, None)]
    #[case("type=local,dest=/tmp/root", OutputKind::Local, Some("/tmp/root"))]
    fn outputs_parse_like_docker(
        #[case] value: &str,
        #[case] kind: OutputKind,
        #[case] dest: Option<&str>,
    ) {
        let spec = OutputSpec::parse(value).unwrap();
        assert_eq!(spec.kind, kind);
        assert_eq!(spec.dest, dest.map(PathBuf::from));
    }

    #[rstest]
    #[case("type=image", "use type=oci, type=docker, type=tar or type=local")]
    #[case("type=local", "type=local needs dest=DIRECTORY")]
    #[case("dest=x.tar", "type=oci|docker|tar|local is required")]
    #[case("type=tar,push=true", "unknown field `push=true`")]
    fn bad_outputs_say_what_to_write(#[case] value: &str, #[case] want: &str) {
        let e = format!("{:#}", OutputSpec::parse(value).unwrap_err());
        assert!(e.contains(want), "{e}");
    }
}
