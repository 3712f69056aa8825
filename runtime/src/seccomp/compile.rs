//! A `linux.seccomp` section compiled to classic BPF for this architecture: `seccompiler`
//! builds the programs (architecture check, argument comparisons), the `syscalls` crate plus
//! [`NEWER`] map names to numbers. Names unknown on this architecture are skipped, as
//! libseccomp does.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::{Result, SeccompError, EPERM};

/// Syscalls newer than the `syscalls` crate's tables (0.6.18 ends at `lsm_list_modules`,
/// 461) that moby's profile allows, numbered as in the kernel's `syscall_64.tbl`.
#[cfg(target_arch = "x86_64")]
const NEWER: &[(&str, u32)] = &[
    ("uretprobe", 335),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
];
/// Syscalls newer than the `syscalls` crate's tables (0.6.18 ends at `lsm_list_modules`,
/// 461) that moby's profile allows, numbered as in the kernel's generic `syscall.tbl`.
#[cfg(not(target_arch = "x86_64"))]
const NEWER: &[(&str, u32)] = &[
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
];

/// The syscall's number on this architecture; `None` when it has none here.
pub(super) fn number(name: &str) -> Option<i64> {
    if let Ok(nr) = syscalls::Sysno::from_str(name) {
        return Some(i64::from(nr.id()));
    }
    NEWER
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| i64::from(*nr))
}

fn target_arch() -> Result<TargetArch> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        "riscv64" => Ok(TargetArch::riscv64),
        other => Err(SeccompError::Unsupported {
            what: format!("architecture {other}"),
        }),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(EPERM)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        other => {
            return Err(SeccompError::Unsupported {
                what: format!("action {other:?}"),
            })
        }
    })
}

/// The syscall's argument conditions as one rule (ANDed, as libseccomp does for one rule);
/// `None` when it has none (unconditional). Every OCI operator maps to one of seccompiler's;
/// values are compared as 64 bits, as libseccomp does on 64-bit architectures.
fn rule(syscall: &LinuxSyscall) -> Result<Option<SeccompRule>> {
    let mut conditions = Vec::new();
    for arg in syscall.args().as_deref().unwrap_or_default() {
        let (op, value) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
            // libseccomp: (arg & value) == valueTwo.
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(arg.value()),
                arg.value_two().unwrap_or(0),
            ),
        };
        let index = u8::try_from(arg.index()).map_err(|_| SeccompError::Unsupported {
            what: format!("argument index {}", arg.index()),
        })?;
        conditions.push(
            SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                .map_err(SeccompError::Compile)?,
        );
    }
    if conditions.is_empty() {
        return Ok(None);
    }
    SeccompRule::new(conditions)
        .map(Some)
        .map_err(SeccompError::Compile)
}

/// Rules per syscall number; `None`: matches whatever the arguments.
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Adds `rule` for `nr`: an unconditional rule wins over conditional ones (they are ORed).
fn add(rules: &mut Rules, nr: i64, rule: Option<SeccompRule>) {
    match (rules.entry(nr).or_insert_with(|| Some(Vec::new())), rule) {
        (slot @ Some(_), None) => *slot = None,
        (Some(list), Some(r)) => list.push(r),
        (None, _) => {}
    }
}

/// Compiles a `linux.seccomp` section for this architecture. Rules whose action is neither
/// the default nor `allow` (moby's `clone3` → `ENOSYS`) go into a further program each,
/// installed after the first; the kernel takes the most restrictive answer of all filters,
/// so the first allows those calls when the rule matches and the later one answers them.
/// Returns the programs in order.
///
/// # Errors
/// An unsupported action, operator, argument index or architecture.
pub fn compile(section: &LinuxSeccomp) -> Result<Vec<BpfProgram>> {
    let arch = target_arch()?;
    let default = action(section.default_action(), section.default_errno_ret())?;
    let mut allowed = Rules::new();
    let mut other: Vec<(SeccompAction, Rules)> = Vec::new();
    for sc in section.syscalls().as_deref().unwrap_or_default() {
        let act = action(sc.action(), sc.errno_ret())?;
        let rule = rule(sc)?;
        for nr in sc.names().iter().filter_map(|n| number(n)) {
            if act == SeccompAction::Allow {
                add(&mut allowed, nr, rule.clone());
            } else if act != default {
                add(&mut allowed, nr, rule.clone());
                let at = if let Some(i) = other.iter().position(|(a, _)| *a == act) {
                    i
                } else {
                    other.push((act.clone(), Rules::new()));
                    other.len() - 1
                };
                add(&mut other[at].1, nr, rule.clone());
            }
        }
    }
    let mut programs = vec![to_bpf(allowed, default, SeccompAction::Allow, arch)?];
    for (act, rules) in other {
        programs.push(to_bpf(rules, SeccompAction::Allow, act, arch)?);
    }
    Ok(programs)
}

fn to_bpf(
    rules: Rules,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram> {
    // seccompiler: an empty rule list matches whatever the arguments.
    let rules = rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let filter =
        SeccompFilter::new(rules, mismatch, matched, arch).map_err(SeccompError::Compile)?;
    BpfProgram::try_from(filter).map_err(SeccompError::Compile)
}
