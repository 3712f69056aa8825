//! The device controller: `linux.resources.devices` as v1 `devices.allow`/`devices.deny`
//! writes ([`v1_writes`]) and as a v2 eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`program`],
//! attached by [`attach`] through [`super::bpf`]).
//!
//! Both follow the v1 kernel's semantics (`security/device_cgroup.c`), so a hybrid host, which
//! applies both, gets one answer: a rule of type `a` resets the default (allow or deny) and
//! drops every exception; a rule against the default is an exception (merged with an exception
//! of the same type, major and minor); a rule with the default's verdict removes those access
//! bits from the exception of the same type, major and minor. Under default deny, an access is
//! allowed when one exception covers all of it; under default allow, it is denied when any
//! exception overlaps it (the kernel's `match_exception_partial`).
//!
//! An empty rule list changes nothing: the cgroup keeps its parent's devices (v1) and gets no
//! program (v2).

use std::ffi::CStr;
use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::bpf::{self, Insn};
use super::{CgroupError, Result};

/// `BPF_DEVCG_ACC_MKNOD`, `…_READ`, `…_WRITE`: the access bits, as the program sees them.
const MKNOD: u8 = 1;
const READ: u8 = 2;
const WRITE: u8 = 4;
const RWM: u8 = MKNOD | READ | WRITE;

/// What a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// `a`: every device (and, as a rule, a reset of the default).
    All,
    /// `c` (and `u`).
    Char,
    /// `b`.
    Block,
}

/// One `linux.resources.devices` entry, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (`true`) or deny.
    pub allow: bool,
    /// Device type.
    pub typ: DeviceType,
    /// Major number; `None` is `*`.
    pub major: Option<u32>,
    /// Minor number; `None` is `*`.
    pub minor: Option<u32>,
    /// Access bits: [`MKNOD`] | [`READ`] | [`WRITE`].
    pub access: u8,
}

impl DeviceRule {
    /// The rule as v1 writes it: `a`, or `c 1:3 rwm`.
    #[must_use]
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let typ = match self.typ {
            DeviceType::All => return "a".to_owned(),
            DeviceType::Char => 'c',
            DeviceType::Block => 'b',
        };
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{typ} {}:{} {access}", num(self.major), num(self.minor))
    }

    fn same_device(&self, other: &Self) -> bool {
        (self.typ, self.major, self.minor) == (other.typ, other.major, other.minor)
    }
}

fn invalid(rule: &LinuxDeviceCgroup, reason: &'static str) -> CgroupError {
    CgroupError::DeviceRule {
        rule: format!(
            "{} {} {}:{} {}",
            if rule.allow() { "allow" } else { "deny" },
            rule.typ().unwrap_or_default().as_str(),
            rule.major()
                .map_or_else(|| "*".to_owned(), |n| n.to_string()),
            rule.minor()
                .map_or_else(|| "*".to_owned(), |n| n.to_string()),
            rule.access().as_deref().unwrap_or("")
        ),
        reason,
    }
}

/// Checks one spec rule: type `a`/`b`/`c`/`u` (unset is `a`), numbers in `u32` (unset or
/// negative is `*`), access of `r`, `w`, `m` (unset or empty is `rwm`, as runc).
///
/// # Errors
/// [`CgroupError::DeviceRule`] for a FIFO type, a number too large, or another access letter.
pub fn from_spec(rule: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let typ = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A => DeviceType::All,
        LinuxDeviceType::B => DeviceType::Block,
        LinuxDeviceType::C | LinuxDeviceType::U => DeviceType::Char,
        LinuxDeviceType::P => return Err(invalid(rule, "a FIFO is no device")),
    };
    let num = |n: Option<i64>| match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(rule, "device number out of range")),
    };
    let mut access = 0;
    for c in rule.access().as_deref().unwrap_or("").chars() {
        access |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => return Err(invalid(rule, "access must be made of `r`, `w` and `m`")),
        };
    }
    Ok(DeviceRule {
        allow: rule.allow(),
        typ,
        major: num(rule.major())?,
        minor: num(rule.minor())?,
        access: if access == 0 { RWM } else { access },
    })
}

/// The checked rules of `resources.devices`, in order; empty when there are none.
///
/// # Errors
/// As [`from_spec`].
pub fn from_resources(resources: Option<&LinuxResources>) -> Result<Vec<DeviceRule>> {
    resources
        .and_then(|r| r.devices().as_ref())
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(from_spec)
        .collect()
}

/// The v1 writes for `rules`, in order: (`devices.allow` or `devices.deny`, line). Written in
/// order into a new cgroup (which starts as a copy of its parent) they leave the kernel in the
/// state [`effective`] computes.
#[must_use]
pub fn v1_writes(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    rules
        .iter()
        .map(|r| {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            (file, r.v1_line())
        })
        .collect()
}

/// The state the v1 kernel reaches from `rules`: the default verdict and the exceptions (each
/// with the opposite verdict), starting from allow-all with no exceptions (a cgroup below the
/// root).
#[must_use]
pub fn effective(rules: &[DeviceRule]) -> (bool, Vec<DeviceRule>) {
    let mut default_allow = true;
    let mut exceptions: Vec<DeviceRule> = Vec::new();
    for r in rules {
        if r.typ == DeviceType::All {
            default_allow = r.allow;
            exceptions.clear();
        } else if r.allow == default_allow {
            for e in exceptions.iter_mut().filter(|e| e.same_device(r)) {
                e.access &= !r.access;
            }
            exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = exceptions.iter_mut().find(|e| e.same_device(r)) {
            e.access |= r.access;
        } else {
            exceptions.push(*r);
        }
    }
    (default_allow, exceptions)
}

// eBPF opcodes (`include/uapi/linux/bpf.h`, `bpf_common.h`).
const LDX_MEM_W: u8 = 0x61;
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_EXIT: u8 = 0x95;
/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Jumps in a block are written with offset `0` and pointed at the block's end afterwards.
fn is_jump(i: &Insn) -> bool {
    matches!(i.code, JMP_JEQ_K | JMP_JNE_K | JMP_JNE_X)
}

/// The device program for `rules` (as runc's and crun's generators): load `struct
/// bpf_cgroup_dev_ctx` into registers (r2 type, r3 access, r4 major, r5 minor), then one block
/// per exception of [`effective`] that returns the exception's verdict when it matches and
/// falls through to the next block otherwise, then the default verdict.
#[must_use]
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let (default_allow, exceptions) = effective(rules);
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xFFFF),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for e in &exceptions {
        let typ = if e.typ == DeviceType::Block {
            DEV_BLOCK
        } else {
            DEV_CHAR
        };
        let mut block = vec![insn(JMP_JNE_K, 2, 0, 0, typ)];
        if e.access != RWM {
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(e.access)));
            if e.allow {
                // Allowed only when the exception covers every bit asked for.
                block.push(insn(JMP_JNE_X, 1, 3, 0, 0));
            } else {
                // Denied when it covers any of them.
                block.push(insn(JMP_JEQ_K, 1, 0, 0, 0));
            }
        }
        // The kernel's numbers are u32; the immediate is their bit pattern.
        #[allow(clippy::cast_possible_wrap)]
        let imm = |n: u32| n as i32;
        if let Some(major) = e.major {
            block.push(insn(JMP_JNE_K, 4, 0, 0, imm(major)));
        }
        if let Some(minor) = e.minor {
            block.push(insn(JMP_JNE_K, 5, 0, 0, imm(minor)));
        }
        block.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(e.allow)));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if is_jump(ins) {
                ins.off = i16::try_from(len - (i + 1)).unwrap_or(i16::MAX);
            }
        }
        prog.extend(block);
    }
    prog.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(default_allow)));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// License of the program (the kernel's `MODULE_LICENSE` format); it calls no helper.
const LICENSE: &CStr = c"Apache";

/// Loads the program for `rules` and attaches it to the cgroup v2 directory `dir`. The program
/// lives as long as the cgroup: removing the directory detaches it.
///
/// # Errors
/// [`CgroupError::Bpf`] when the directory cannot be opened or the kernel refuses the program.
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let bpf_err = |op: &'static str| {
        move |source| CgroupError::Bpf {
            op,
            path: dir.to_owned(),
            source,
        }
    };
    let cgroup = std::fs::File::open(dir).map_err(bpf_err("open the cgroup for"))?;
    let prog = bpf::load_device_program(&program(rules), LICENSE).map_err(bpf_err("load"))?;
    bpf::attach_device_program(cgroup.as_fd(), prog.as_fd()).map_err(bpf_err("attach"))
}

#[cfg(test)]
pub(crate) mod tests {
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;
    use rstest::rstest;

    use super::*;

    fn rule(
        allow: bool,
        typ: DeviceType,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    /// Docker's default list (moby's deny-all, then runc's `AllowedDevices`).
    pub(crate) fn docker_default() -> Vec<DeviceRule> {
        use DeviceType::{All, Block, Char};
        let mut r = vec![
            rule(false, All, None, None, RWM),
            rule(true, Char, None, None, MKNOD),
            rule(true, Block, None, None, MKNOD),
        ];
        for (maj, min) in [(1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9)] {
            r.push(rule(true, Char, Some(maj), Some(min), RWM));
        }
        r.push(rule(true, Char, Some(136), None, RWM));
        r.push(rule(true, Char, Some(5), Some(2), RWM));
        r.push(rule(true, Char, Some(10), Some(200), RWM));
        r
    }

    /// Runs `prog` on a `bpf_cgroup_dev_ctx`, for the instructions [`program`] emits.
    fn exec(prog: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> u32 {
        let ctx = [
            (u32::from(access) << 16) | u32::try_from(typ).unwrap(),
            major,
            minor,
        ];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
            let imm = u64::from(i.imm as u32);
            let jump = |taken: bool| if taken { i.off as usize } else { 0 };
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]),
                ALU32_AND_K => r[dst] = (r[dst] & imm) & 0xffff_ffff,
                ALU32_RSH_K => r[dst] = (r[dst] & 0xffff_ffff) >> imm,
                ALU32_MOV_K => r[dst] = imm,
                ALU32_MOV_X => r[dst] = r[src] & 0xffff_ffff,
                JMP_JEQ_K => pc += jump(r[dst] == imm),
                JMP_JNE_K => pc += jump(r[dst] != imm),
                JMP_JNE_X => pc += jump(r[dst] != r[src]),
                JMP_EXIT => return u32::try_from(r[0]).unwrap(),
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    fn allowed(rules: &[DeviceRule], typ: i32, access: u8, major: u32, minor: u32) -> bool {
        exec(&program(rules), typ, access, major, minor) == 1
    }

    #[rstest]
    #[case::null_rw(DEV_CHAR, READ | WRITE, 1, 3, true)]
    #[case::urandom_r(DEV_CHAR, READ, 1, 9, true)]
    #[case::pts(DEV_CHAR, READ | WRITE, 136, 7, true)]
    #[case::tun(DEV_CHAR, READ | WRITE, 10, 200, true)]
    #[case::ptmx(DEV_CHAR, READ | WRITE, 5, 2, true)]
    #[case::mknod_kmsg(DEV_CHAR, MKNOD, 1, 11, true)]
    #[case::mknod_loop(DEV_BLOCK, MKNOD, 7, 0, true)]
    #[case::kmsg_w(DEV_CHAR, WRITE, 1, 11, false)]
    #[case::kmsg_r(DEV_CHAR, READ, 1, 11, false)]
    #[case::kvm(DEV_CHAR, READ | WRITE, 10, 232, false)]
    #[case::loop_r(DEV_BLOCK, READ, 7, 0, false)]
    #[case::console(DEV_CHAR, READ, 5, 1, false)]
    #[case::block_as_null(DEV_BLOCK, READ, 1, 3, false)]
    fn docker_default_program(
        #[case] typ: i32,
        #[case] access: u8,
        #[case] major: u32,
        #[case] minor: u32,
        #[case] want: bool,
    ) {
        assert_eq!(allowed(&docker_default(), typ, access, major, minor), want);
    }

    #[test]
    fn program_layout_matches_runc() {
        use DeviceType::{All, Char};
        // runc's `TestDeviceFilter_Nil` / `_Privileged` prologue and epilogue.
        let prologue = [
            insn(LDX_MEM_W, 2, 1, 0, 0),
            insn(ALU32_AND_K, 2, 0, 0, 0xFFFF),
            insn(LDX_MEM_W, 3, 1, 0, 0),
            insn(ALU32_RSH_K, 3, 0, 0, 16),
            insn(LDX_MEM_W, 4, 1, 4, 0),
            insn(LDX_MEM_W, 5, 1, 8, 0),
        ];
        let allow_all = program(&[rule(true, All, None, None, RWM)]);
        assert_eq!(allow_all[..6], prologue);
        assert_eq!(
            allow_all[6..],
            [insn(ALU32_MOV_K, 0, 0, 0, 1), insn(JMP_EXIT, 0, 0, 0, 0)]
        );
        // (c, *, *, m, allow) then (c, 1, 3, rwm, allow) under deny-all.
        let p = program(&[
            rule(false, All, None, None, RWM),
            rule(true, Char, None, None, MKNOD),
            rule(true, Char, Some(1), Some(3), RWM),
        ]);
        assert_eq!(
            p[6..],
            [
                insn(JMP_JNE_K, 2, 0, 5, DEV_CHAR),
                insn(ALU32_MOV_X, 1, 3, 0, 0),
                insn(ALU32_AND_K, 1, 0, 0, 1),
                insn(JMP_JNE_X, 1, 3, 2, 0),
                insn(ALU32_MOV_K, 0, 0, 0, 1),
                insn(JMP_EXIT, 0, 0, 0, 0),
                insn(JMP_JNE_K, 2, 0, 4, DEV_CHAR),
                insn(JMP_JNE_K, 4, 0, 3, 1),
                insn(JMP_JNE_K, 5, 0, 2, 3),
                insn(ALU32_MOV_K, 0, 0, 0, 1),
                insn(JMP_EXIT, 0, 0, 0, 0),
                insn(ALU32_MOV_K, 0, 0, 0, 0),
                insn(JMP_EXIT, 0, 0, 0, 0),
            ]
        );
    }

    #[test]
    fn v1_semantics() {
        use DeviceType::{All, Block, Char};
        // A reset drops what came before.
        let rules = [
            rule(true, Char, Some(1), Some(3), RWM),
            rule(false, All, None, None, RWM),
        ];
        assert_eq!(effective(&rules), (false, vec![]));
        assert!(!allowed(&rules, DEV_CHAR, READ, 1, 3));
        // Exceptions of one device merge; a rule with the default's verdict takes bits away.
        let rules = [
            rule(false, All, None, None, RWM),
            rule(true, Char, Some(1), Some(3), READ),
            rule(true, Char, Some(1), Some(3), WRITE),
            rule(false, Char, Some(1), Some(3), READ),
        ];
        assert_eq!(
            effective(&rules).1,
            [rule(true, Char, Some(1), Some(3), WRITE)]
        );
        assert!(allowed(&rules, DEV_CHAR, WRITE, 1, 3));
        assert!(!allowed(&rules, DEV_CHAR, READ | WRITE, 1, 3));
        // Default allow: a deny exception refuses any overlap (`match_exception_partial`).
        let rules = [
            rule(true, All, None, None, RWM),
            rule(false, Block, Some(8), None, READ),
        ];
        assert!(!allowed(&rules, DEV_BLOCK, READ | WRITE, 8, 1));
        assert!(allowed(&rules, DEV_BLOCK, WRITE, 8, 1));
        assert!(allowed(&rules, DEV_CHAR, READ, 8, 1));
        // No rules: nothing changes (allow-all).
        assert!(allowed(&[], DEV_BLOCK, RWM, 8, 0));
    }

    #[test]
    fn v1_lines_in_order() {
        let writes = v1_writes(&docker_default());
        assert_eq!(writes[0], ("devices.deny", "a".to_owned()));
        assert_eq!(writes[1], ("devices.allow", "c *:* m".to_owned()));
        assert_eq!(writes[2], ("devices.allow", "b *:* m".to_owned()));
        assert_eq!(writes[3], ("devices.allow", "c 1:3 rwm".to_owned()));
        assert_eq!(writes[9], ("devices.allow", "c 136:* rwm".to_owned()));
        assert_eq!(writes.len(), 12);
    }

    #[rstest]
    #[case::defaults(None, None, None, None, Ok("a"))]
    #[case::char_wild(Some(LinuxDeviceType::C), Some(-1), None, Some("m"), Ok("c *:* m"))]
    #[case::unbuffered(
        Some(LinuxDeviceType::U),
        Some(4),
        Some(64),
        Some(""),
        Ok("c 4:64 rwm")
    )]
    #[case::block(Some(LinuxDeviceType::B), Some(8), Some(0), Some("wr"), Ok("b 8:0 rw"))]
    #[case::fifo(Some(LinuxDeviceType::P), Some(1), Some(1), None, Err(()))]
    #[case::big(Some(LinuxDeviceType::C), Some(1 << 40), Some(1), None, Err(()))]
    #[case::bad_access(Some(LinuxDeviceType::C), Some(1), Some(1), Some("rx"), Err(()))]
    fn spec_rules_parse(
        #[case] typ: Option<LinuxDeviceType>,
        #[case] major: Option<i64>,
        #[case] minor: Option<i64>,
        #[case] access: Option<&str>,
        #[case] want: std::result::Result<&str, ()>,
    ) {
        let mut r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .build()
            .unwrap();
        r.set_typ(typ);
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(access.map(str::to_owned));
        let got = from_spec(&r).map(|d| d.v1_line());
        match want {
            Ok(line) => assert_eq!(got.unwrap(), line),
            Err(()) => assert!(matches!(got, Err(CgroupError::DeviceRule { .. }))),
        }
    }
}
