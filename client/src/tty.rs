//! The user's terminal: raw mode while attached to a container's pty, and window sizes
//! (`TIOCGWINSZ`/`TIOCSWINSZ`, which nix has no safe wrapper for).

use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// Raw mode on a terminal, restored on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts `fd` in raw mode (no echo, no line editing, no signals from keys: Ctrl-C reaches
    /// the container as a byte).
    ///
    /// # Errors
    /// `fd` is not a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> nix::Result<Self> {
        let fd = fd
            .try_clone_to_owned()
            .map_err(|_| nix::errno::Errno::EBADF)?;
        let saved = termios::tcgetattr(&fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output post-processing so "\n" from our own messages still returns the carriage.
        raw.output_flags |= termios::OutputFlags::OPOST;
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Whether `fd` is a terminal.
#[must_use]
pub fn is_tty(fd: impl AsFd) -> bool {
    nix::unistd::isatty(fd.as_fd().as_raw_fd()).unwrap_or(false)
}

/// `(rows, columns)` of the terminal `fd`.
#[allow(unsafe_code)]
#[must_use]
pub fn size(fd: impl AsFd) -> Option<(u16, u16)> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize`, which lives for the call.
    let rc = unsafe { nix::libc::ioctl(fd.as_fd().as_raw_fd(), nix::libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets the window size of the pty `fd` (the container then gets `SIGWINCH`).
#[allow(unsafe_code)]
pub fn set_size(fd: impl AsFd, rows: u16, cols: u16) {
    let ws = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives for the call.
    let _ = unsafe { nix::libc::ioctl(fd.as_fd().as_raw_fd(), nix::libc::TIOCSWINSZ, &ws) };
}

/// Docker's detach keys: `ctrl-p,ctrl-q` by default; `--detach-keys` takes `ctrl-<a-z@[\\]^_>`
/// or single characters, comma-separated.
///
/// # Errors
/// Docker's `Invalid detach keys (…) provided`.
pub fn parse_detach_keys(v: &str) -> anyhow::Result<Vec<u8>> {
    let bad = || anyhow::anyhow!("Invalid detach keys ({v}) provided");
    let mut out = Vec::new();
    for key in v.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad()),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Watches a byte stream for the detach sequence, holding back a partial match (so a lone
/// Ctrl-P still reaches the container once the next key is not Ctrl-Q).
#[derive(Debug)]
pub struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    /// Watches for `keys`.
    #[must_use]
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Filters `input`: the bytes to forward, and whether the sequence completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), [0, 31]);
        for bad in ["", "ctrl-", "ctrl-ab", "abc", "ctrl-1"] {
            assert_eq!(
                parse_detach_keys(bad).unwrap_err().to_string(),
                format!("Invalid detach keys ({bad}) provided")
            );
        }
    }

    #[test]
    fn detach_sequence_is_found_across_reads_and_partial_matches_pass_through() {
        let mut d = DetachKeys::new(vec![16, 17]);
        assert_eq!(d.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(d.feed(&[16]), (vec![], false));
        assert_eq!(d.feed(&[17]), (vec![], true));
        let mut d = DetachKeys::new(vec![16, 17]);
        // Ctrl-P then something else: both go through.
        assert_eq!(d.feed(&[16, b'a']), (vec![16, b'a'], false));
        assert_eq!(d.feed(&[16, 16, 17]), (vec![16], true));
    }
}
