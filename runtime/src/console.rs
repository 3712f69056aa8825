//! The host side of a container's terminal, as runc's `--console-socket`: the caller makes a
//! socket pair ([`socket_pair`]), gives one end to the runtime (`Stdio::console`) and receives
//! the pty master init opened inside the container ([`receive`]) from the other. The pty thus
//! belongs to the container's own devpts instance: `tty` inside prints `/dev/pts/0`.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

/// A connected Unix stream socket pair, both ends close-on-exec: `(caller's, init's)`.
///
/// # Errors
/// socketpair(2) failed.
pub fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Receives the pty master sent over `socket`; blocks until it comes or the other end closes.
///
/// # Errors
/// The socket closed without a descriptor (init failed before opening the terminal).
#[allow(unsafe_code)]
pub fn receive(socket: &OwnedFd) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 16];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in this process for us; nothing else
                // owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the container did not send its terminal",
    ))
}
