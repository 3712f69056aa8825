//! `-u`/`--user` (and the image's `User`) resolved as Docker does: runc's
//! `libcontainer/user.GetExecUser`, which moby's `daemon/oci_linux.go` `getUser` calls.
//!
//! - The spec is `user[:group]`; each part a name or a number (Go's `strconv.Atoi`: an optional
//!   sign, then digits). Fields after a second `:` are ignored; `""` and `:` mean the default
//!   user, uid 0.
//! - A number is always a uid/gid, never a name. A name must be in the rootfs's `/etc/passwd`
//!   (`/etc/group`); a number need not be, but then it must be in `0..=2147483647` (runc's
//!   `ErrRange`).
//! - Without an explicit group the gid is the passwd entry's (0 when there is none) and the
//!   supplementary groups are the `/etc/group` entries that list the matched user's name; with
//!   one there are no supplementary groups.
//!
//! Stricter than runc in two places: the resolved uid and gids are range-checked even when they
//! come from the image's passwd or group file (a uid of 4294967295 is `-1` to `setresuid`, which
//! leaves the process root), and the two files must be regular files of at most
//! [`MAX_DB_SIZE`] bytes (a FIFO would block the read, a device such as `/dev/zero` never ends).
//!
//! It reads only those two files, through [`crate::rootfs::secure_join`]; it makes no other
//! system call.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use fs_err::os::unix::fs::OpenOptionsExt as _;

use crate::rootfs::secure_join;

/// The largest uid or gid a container may have (runc's `maxID`, `1<<31 - 1`).
pub const MAX_ID: i64 = 2_147_483_647;

/// The largest `/etc/passwd` or `/etc/group` read: far above any real one (a few hundred bytes
/// per hundred users), far below what would hurt the host.
pub const MAX_DB_SIZE: u64 = 16 << 20;

/// Errors resolving a user.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name (or a number too large to be one) no passwd entry has.
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoSuchUser {
        /// The name asked for.
        user: String,
    },
    /// A group name no group entry has.
    #[error("unable to find group {group}: no matching entries in group file")]
    NoSuchGroup {
        /// The name asked for.
        group: String,
    },
    /// A uid or gid outside `0..=MAX_ID` (Docker's wording, which names no value).
    #[error("uids and gids must be in range 0-{MAX_ID}")]
    Range {
        /// The id refused.
        id: i64,
    },
    /// `/etc/passwd` or `/etc/group` exists but is not a regular file.
    #[error("`{}` in the container's root file system is not a regular file", path.display())]
    NotRegular {
        /// The file, inside the rootfs.
        path: PathBuf,
    },
    /// `/etc/passwd` or `/etc/group` is larger than [`MAX_DB_SIZE`].
    #[error("`{}` in the container's root file system is larger than {MAX_DB_SIZE} bytes", path.display())]
    TooLarge {
        /// The file, inside the rootfs.
        path: PathBuf,
    },
    /// `/etc/passwd` or `/etc/group` could not be read.
    #[error("cannot read `{}` in the container's root file system", path.display())]
    Read {
        /// The file, inside the rootfs.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, UserError>;

/// The user a process runs as (runc's `ExecUser`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids from `/etc/group` (only without an explicit group).
    pub sgids: Vec<u32>,
    /// Home directory from passwd (`/` when there is no entry, as runc).
    pub home: String,
}

/// One `/etc/passwd` line: `name:password:UID:GID:GECOS:directory:shell`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// uid (0 when missing or not a number, as runc's parser).
    pub uid: i64,
    /// Primary gid (likewise).
    pub gid: i64,
    /// Home directory.
    pub home: String,
}

/// One `/etc/group` line: `name:password:GID:member,member`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// gid (0 when missing or not a number, as runc's parser).
    pub gid: i64,
    /// Member user names.
    pub members: Vec<String>,
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits, within 64 bits.
fn atoi(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// Non-empty, non-comment lines, trimmed, split on `:`.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// Parses `/etc/passwd` text; missing fields are empty, bad numbers 0 (runc's `parseLine`).
#[must_use]
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .map(|f| {
            let field = |i: usize| f.get(i).copied().unwrap_or_default();
            PasswdEntry {
                name: field(0).to_owned(),
                uid: atoi(field(2)).unwrap_or(0),
                gid: atoi(field(3)).unwrap_or(0),
                home: field(5).to_owned(),
            }
        })
        .collect()
}

/// Parses `/etc/group` text, as [`parse_passwd`].
#[must_use]
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .map(|f| {
            let field = |i: usize| f.get(i).copied().unwrap_or_default();
            GroupEntry {
                name: field(0).to_owned(),
                gid: atoi(field(2)).unwrap_or(0),
                members: field(3)
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }
        })
        .collect()
}

fn in_range(id: i64) -> Result<u32> {
    u32::try_from(id)
        .ok()
        .filter(|_| id <= MAX_ID)
        .ok_or(UserError::Range { id })
}

/// Resolves `spec` against parsed passwd and group entries (runc's `GetExecUser` with uid 0,
/// gid 0 and home `/` as the defaults).
///
/// # Errors
/// An unknown name, or an id out of range.
pub fn resolve(spec: &str, passwd: &[PasswdEntry], groups: &[GroupEntry]) -> Result<ExecUser> {
    let mut parts = spec.split(':');
    let user_arg = parts.next().unwrap_or_default();
    let group_arg = parts.next().unwrap_or_default();
    let uid_arg = atoi(user_arg);
    let gid_arg = atoi(group_arg);

    let matched = passwd.iter().find(|u| {
        if user_arg.is_empty() {
            u.uid == 0
        } else if let Some(n) = uid_arg {
            u.uid == n
        } else {
            u.name == user_arg
        }
    });
    let (uid, mut gid, home) = match (matched, uid_arg) {
        (Some(u), _) => (u.uid, u.gid, u.home.clone()),
        (None, _) if user_arg.is_empty() => (0, 0, "/".to_owned()),
        (None, Some(n)) => (in_range(n)?.into(), 0, "/".to_owned()),
        (None, None) => {
            return Err(UserError::NoSuchUser {
                user: user_arg.to_owned(),
            })
        }
    };
    let mut sgids = Vec::new();
    if group_arg.is_empty() {
        if let Some(name) = matched.map(|u| u.name.as_str()) {
            for g in groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == name))
            {
                sgids.push(in_range(g.gid)?);
            }
        }
    } else {
        let found = groups.iter().find(|g| match gid_arg {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        });
        gid = match (found, gid_arg) {
            (Some(g), _) => g.gid,
            (None, Some(n)) => in_range(n)?.into(),
            (None, None) => {
                return Err(UserError::NoSuchGroup {
                    group: group_arg.to_owned(),
                })
            }
        };
    }
    Ok(ExecUser {
        uid: in_range(uid)?,
        gid: in_range(gid)?,
        sgids,
        home,
    })
}

/// Reads `file` (absolute, inside the rootfs) when it is a regular file of at most
/// [`MAX_DB_SIZE`] bytes; `""` when it does not exist, as runc.
///
/// # Errors
/// Anything but a missing file or a regular one within the limit.
pub fn read_db(rootfs: &Path, file: &str) -> Result<String> {
    let path = PathBuf::from(file);
    let read_err = |source| UserError::Read {
        path: path.clone(),
        source,
    };
    let Ok(host) = secure_join(rootfs, &path) else {
        // A symlink loop: nothing to read, as runc's failed open.
        return Ok(String::new());
    };
    // O_NONBLOCK: opening a FIFO put there after the check below must not block.
    let f = match fs_err::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&host)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(read_err(e)),
    };
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(UserError::NotRegular { path });
    }
    if meta.len() > MAX_DB_SIZE {
        return Err(UserError::TooLarge { path });
    }
    let mut bytes = Vec::new();
    f.take(MAX_DB_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_DB_SIZE {
        return Err(UserError::TooLarge { path });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Resolves `spec` against the rootfs's `/etc/passwd` and `/etc/group`.
///
/// # Errors
/// An unknown name, an id out of range, an unreadable passwd or group file.
pub fn resolve_in(rootfs: &Path, spec: &str) -> Result<ExecUser> {
    let passwd = parse_passwd(&read_db(rootfs, "/etc/passwd")?);
    let groups = parse_group(&read_db(rootfs, "/etc/group")?);
    resolve(spec, &passwd, &groups)
}

/// `--group-add`: each group's gid, by name from the rootfs's `/etc/group`, else as a number
/// (runc's `GetAdditionalGroups`).
///
/// # Errors
/// A name no entry has, a gid out of range, an unreadable group file.
pub fn additional_groups_in(rootfs: &Path, names: &[String]) -> Result<Vec<u32>> {
    let groups = parse_group(&read_db(rootfs, "/etc/group")?);
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            match (groups.iter().find(|g| g.name == name), atoi(name)) {
                (Some(g), _) => in_range(g.gid),
                (None, Some(n)) => in_range(n),
                (None, None) => Err(UserError::NoSuchGroup {
                    group: name.to_owned(),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        # comment:x:7:7::/c:/bin/sh\n\
        short:x:1200\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,root\nstaff:x:50:app\napp:x:1000:\n";

    fn resolve_text(spec: &str) -> Result<ExecUser> {
        resolve(spec, &parse_passwd(PASSWD), &parse_group(GROUP))
    }

    #[rstest]
    #[case::default("", 0, 0, &[10], "/root")]
    #[case::default_colon(":", 0, 0, &[10], "/root")]
    #[case::root("root", 0, 0, &[10], "/root")]
    #[case::name("app", 1000, 1000, &[10, 50], "/home/app")]
    #[case::name_trailing_colon("app:", 1000, 1000, &[10, 50], "/home/app")]
    #[case::uid_of_known_user("1000", 1000, 1000, &[10, 50], "/home/app")]
    #[case::name_group("app:staff", 1000, 50, &[], "/home/app")]
    #[case::name_gid("app:10", 1000, 10, &[], "/home/app")]
    #[case::default_user_group(":10", 0, 10, &[], "/root")]
    #[case::third_field_ignored("app:app:x", 1000, 1000, &[], "/home/app")]
    #[case::numeric_unknown("4242", 4242, 0, &[], "/")]
    #[case::numeric_pair("4242:7", 4242, 7, &[], "/")]
    #[case::plus_sign("+5", 5, 0, &[], "/")]
    #[case::max("2147483647", 2_147_483_647, 0, &[], "/")]
    #[case::max_gid("0:2147483647", 0, 2_147_483_647, &[], "/root")]
    #[case::short_line("short", 1200, 0, &[], "")]
    fn resolves_like_runc(
        #[case] spec: &str,
        #[case] uid: u32,
        #[case] gid: u32,
        #[case] sgids: &[u32],
        #[case] home: &str,
    ) {
        let u = resolve_text(spec).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.sgids.as_slice(), u.home.as_str()),
            (uid, gid, sgids, home)
        );
    }

    #[rstest]
    #[case::uid_minus_one("4294967295", "uids and gids must be in range 0-2147483647")]
    #[case::uid_past_max("2147483648", "uids and gids must be in range 0-2147483647")]
    #[case::negative("-1", "uids and gids must be in range 0-2147483647")]
    #[case::gid_minus_one("1000:4294967295", "uids and gids must be in range 0-2147483647")]
    #[case::negative_gid("app:-5", "uids and gids must be in range 0-2147483647")]
    #[case::beyond_64_bits(
        "99999999999999999999",
        "unable to find user 99999999999999999999: no matching entries in passwd file"
    )]
    #[case::unknown_name(
        "ghost",
        "unable to find user ghost: no matching entries in passwd file"
    )]
    #[case::space_is_a_name(" 1", "unable to find user  1: no matching entries in passwd file")]
    #[case::comment_is_no_entry(
        "# comment",
        "unable to find user # comment: no matching entries in passwd file"
    )]
    #[case::unknown_group(
        "0:ghosts",
        "unable to find group ghosts: no matching entries in group file"
    )]
    #[case::unknown_group_of_name(
        "app:ghosts",
        "unable to find group ghosts: no matching entries in group file"
    )]
    fn refuses_like_docker(#[case] spec: &str, #[case] message: &str) {
        assert_eq!(resolve_text(spec).unwrap_err().to_string(), message);
    }

    #[rstest]
    #[case::passwd_uid("evil:x:4294967295:0::/:/bin/sh\n", "", "evil")]
    #[case::passwd_gid("evil:x:5:-1::/:/bin/sh\n", "", "evil")]
    #[case::group_gid("evil:x:5:5::/:/bin/sh\n", "big:x:4294967295:evil\n", "evil")]
    fn ids_from_the_image_are_range_checked(
        #[case] passwd: &str,
        #[case] group: &str,
        #[case] spec: &str,
    ) {
        assert!(matches!(
            resolve(spec, &parse_passwd(passwd), &parse_group(group)),
            Err(UserError::Range { .. })
        ));
    }

    fn rootfs(passwd: &str, group: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        fs_err::write(t.path().join("etc/passwd"), passwd).unwrap();
        fs_err::write(t.path().join("etc/group"), group).unwrap();
        t
    }

    #[test]
    fn reads_the_rootfs_files() {
        let t = rootfs(PASSWD, GROUP);
        let u = resolve_in(t.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid, u.sgids), (1000, 1000, vec![10, 50]));
    }

    #[test]
    fn additional_groups_by_name_or_number() {
        let t = rootfs(PASSWD, "wheel:x:10:\naudio:x:63:\n");
        let gids = additional_groups_in(t.path(), &["audio".into(), "4242".into(), "wheel".into()]);
        assert_eq!(gids.unwrap(), [63, 4242, 10]);
        let e = additional_groups_in(t.path(), &["ghosts".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert!(additional_groups_in(t.path(), &["4294967296".into()]).is_err());
    }

    #[test]
    fn missing_files_leave_only_numbers() {
        let t = tempfile::tempdir().unwrap();
        let u = resolve_in(t.path(), "7:8").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (7, 8, "/"));
        assert!(matches!(
            resolve_in(t.path(), "root"),
            Err(UserError::NoSuchUser { .. })
        ));
    }

    #[test]
    fn passwd_symlink_cannot_escape_the_rootfs() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        // On the host, /etc/passwd knows `root`; inside this rootfs nothing does.
        std::os::unix::fs::symlink("/../../../../etc/passwd", t.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_in(t.path(), "root"),
            Err(UserError::NoSuchUser { .. })
        ));
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_in(t.path(), "0"),
            Err(UserError::NotRegular { .. })
        ));
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(matches!(
            resolve_in(t.path(), "0"),
            Err(UserError::NotRegular { .. })
        ));
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        // The character device /dev/zero (1, 5), as a hostile image could unpack it. Refused
        // before any read, or (on a `nodev` mount) at the open.
        if nix::sys::stat::mknod(
            &t.path().join("etc/group"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 5),
        )
        .is_ok()
        {
            assert!(matches!(
                resolve_in(t.path(), "0"),
                Err(UserError::NotRegular { .. } | UserError::Read { .. })
            ));
        }
        // A symlink to a device resolves inside the rootfs, where it is not the host's device.
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", t.path().join("etc/passwd")).unwrap();
        assert!(resolve_in(t.path(), "0").is_ok());
    }

    #[test]
    fn oversized_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        let f = fs_err::File::create(t.path().join("etc/group")).unwrap();
        f.set_len(MAX_DB_SIZE + 1).unwrap();
        assert!(matches!(
            resolve_in(t.path(), "0"),
            Err(UserError::TooLarge { .. })
        ));
    }
}
