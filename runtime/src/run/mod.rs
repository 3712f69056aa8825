//! Runs a container's process in the foreground from a bundle and its spec.
//!
//! ```text
//! berth (caller) --fork--> intermediate: unshare(namespaces) --fork--> init (PID 1 in the new
//!   PID namespace): rootfs, hostname, rlimits, no_new_privs, capabilities, user, execve
//! ```
//!
//! With `linux.cgroupsPath`, the caller creates the container's cgroups and writes
//! `linux.resources` before forking ([`crate::cgroups`]). Init is born in the container's
//! cgroup v2 directory when there is one (`clone3` with `CLONE_INTO_CGROUP`) and joins the v1
//! hierarchies itself as its first step, through each `tasks` file: neither way takes the
//! kernel's global threadgroup lock that writing a PID to `cgroup.procs` takes, whose RCU grace
//! period cost every start 6–16 ms after a pause. Everything init does from then on, up to and
//! after `execve`, is limited; the caller removes the cgroups after the exit. The intermediate
//! is never in them. Init then waits for one byte from the caller, sent after its prestart
//! hook ([`run_with_prestart`]) has set up what it owns in init's namespaces (the network).
//!
//! The caller waits for the intermediate, which waits for init and exits with its status
//! (`128+n` for signal `n`). Init reports failures before `execve` through a close-on-exec pipe
//! as a [`message::Report`], so the caller can tell Docker's 125 (runtime failure), 126 (cannot
//! invoke) and 127 (not found) from the program's own exit status. Init's steps take
//! `&dyn Syscall` ([`init`]); only the fork/wait/pipe plumbing calls nix directly.
//!
//! One file per process role: [`main_process`] (the caller), [`intermediate`], [`init`] (its
//! steps, and the `execve` tail shared with [`crate::exec`]); [`message`] is what they say to
//! each other, [`error`] why a run failed, [`wait`] the shared plumbing, [`tiny_init`] the
//! PID 1 that `--init` (the spec annotation [`tiny_init::ANNOTATION`]) puts before the command.

pub mod error;
pub mod init;
mod intermediate;
pub mod main_process;
pub mod message;
pub mod tiny_init;
mod wait;

pub use error::{
    InitError, InitResult, RunError, EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND, EXIT_RUNTIME,
};
pub use init::{
    apply_rlimits, apply_seccomp, apply_user_and_caps, exec_tail, init, lookup, namespace_flags,
    namespace_joins, setup_terminal,
};
pub use main_process::{run, run_full, run_with, run_with_prestart, Exit, PrestartError, Stdio};
pub(crate) use message::report_and_exit;
pub use message::Report;
pub(crate) use wait::{chain, close_fds_except, fork_into, wait_for};

#[cfg(test)]
mod tests;
