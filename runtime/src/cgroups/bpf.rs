//! The two `bpf(2)` calls the device controller needs on cgroup v2: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`load_device_program`]) and attach it to a cgroup
//! directory ([`attach_device_program`]). Nothing else here talks to the kernel, and nothing
//! here knows about device rules (see [`super::devices`], which generates the instructions).
//!
//! `nix` and `libc` have no wrapper or `bpf_attr` type, so the attribute structs are declared
//! below from `include/uapi/linux/bpf.h`; the kernel accepts a shorter `bpf_attr` than its own
//! and zero-fills the rest.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_PROG_LOAD`.
const BPF_PROG_LOAD: libc::c_long = 5;
/// `BPF_PROG_ATTACH`.
const BPF_PROG_ATTACH: libc::c_long = 8;
/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` (attach type).
const BPF_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: programs of the ancestors run too, and all must allow (as runc).
const BPF_F_ALLOW_MULTI: u32 = 2;

/// One eBPF instruction (`struct bpf_insn`): opcode, `dst_reg` in the low and `src_reg` in the
/// high nibble of `regs` (little-endian bitfields), offset, immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode (class | op | source).
    pub code: u8,
    /// `dst | src << 4`.
    pub regs: u8,
    /// Jump offset, or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Size of the verifier log asked for when a load fails.
const LOG_SIZE: usize = 64 * 1024;

fn prog_load(insns: &[Insn], license: &CStr, log: Option<&mut [u8]>) -> std::io::Result<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| std::io::Error::other("too long"))?;
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoadAttr::default()
    };
    attr.prog_name[..5].copy_from_slice(b"berth");
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; the pointers in it
    // (instructions, license, log buffer) point at live memory of the stated lengths for the
    // duration of the call, and the kernel writes only into the log buffer, within `log_size`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::other("bad fd"))?;
    // SAFETY: the kernel just returned this new file descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads `insns` as a cgroup device program; on failure the error carries the verifier's log.
///
/// # Errors
/// The kernel refusing the program (`EPERM` without `CAP_SYS_ADMIN`/`CAP_BPF`, `EINVAL` with a
/// verifier log for a bad program).
pub fn load_device_program(insns: &[Insn], license: &CStr) -> std::io::Result<OwnedFd> {
    match prog_load(insns, license, None) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let mut log = vec![0u8; LOG_SIZE];
            let again = prog_load(insns, license, Some(&mut log));
            let text = CStr::from_bytes_until_nul(&log)
                .map(|c| c.to_string_lossy().trim().to_owned())
                .unwrap_or_default();
            match again {
                Ok(fd) => Ok(fd),
                Err(e) if text.is_empty() => Err(e),
                Err(e) => Err(std::io::Error::new(e.kind(), format!("{e}: {text}"))),
            }
        }
        Err(e) => Err(e),
    }
}

/// Attaches the device program `prog` to the cgroup v2 directory open as `cgroup`, with
/// `BPF_F_ALLOW_MULTI`.
///
/// # Errors
/// The kernel refusing (`EBADF`/`EINVAL` when `cgroup` is no cgroup v2 directory).
pub fn attach_device_program(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> std::io::Result<()> {
    let fd = |f: BorrowedFd<'_>| u32::try_from(f.as_raw_fd()).unwrap_or(u32::MAX);
    let mut attr = ProgAttachAttr {
        target_fd: fd(cgroup),
        attach_bpf_fd: fd(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..ProgAttachAttr::default()
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; it holds only integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        // offsetof(bpf_attr, expected_attach_type) == 68 in the BPF_PROG_LOAD struct.
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<ProgAttachAttr>(), 20);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
