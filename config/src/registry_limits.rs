//! The `[limits]` section of the registry configuration: what one client, or many, may hold.
//!
//! Every limit exists so that no client can stall the registry for the others (issue 9): idle or
//! slow connections are closed, uploads and downloads get their own bounded slots, and the memory
//! read ahead for downloads is bounded in total. Past a slot limit the registry answers
//! `429 TOOMANYREQUESTS` with `Retry-After` at once instead of queueing.
//!
//! ```toml
//! [limits]
//! max_connections = 4096
//! max_connections_per_ip = 256
//! header_read_timeout_secs = 30
//! idle_timeout_secs = 60
//! body_timeout_secs = 60
//! send_timeout_secs = 60
//! max_concurrent_uploads = 256
//! max_concurrent_downloads = 512
//! read_ahead_bytes = 134217728
//! ```
//!
//! Every key has a variable `BERTH_REGISTRY_LIMITS_<KEY>`, e.g. `BERTH_REGISTRY_LIMITS_MAX_CONNECTIONS`.
//! (This lives beside `registry.rs` rather than in it so that the auth/TLS sections and these can
//! change independently; `registry.rs` only calls [`overlay`] and [`build`].)

use serde::Deserialize;

use crate::registry::{invalid, parse_u64, Result};

/// Bytes a download reads from disk at a time. Each download is charged two of them: the chunk
/// being read and the one the connection is still writing.
pub const DOWNLOAD_CHUNK_BYTES: u64 = 128 * 1024;

/// `[limits]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; past it new connections are accepted and closed at once.
    ///
    /// Default 4096: each connection costs a file descriptor and a few KiB; 4096 is well within a
    /// usual hard `RLIMIT_NOFILE` (the soft limit is raised to the hard one at start, and this
    /// value is lowered to fit it, keeping descriptors for blob files).
    pub max_connections: usize,
    /// Open connections per client IP address at most.
    ///
    /// Default 256: one Docker or containerd client uses about ten connections (three parallel
    /// layer downloads, five uploads), so a CI fleet behind one NAT address still fits, while one
    /// host cannot take more than a sixteenth of the connection slots.
    pub max_connections_per_ip: usize,
    /// Seconds a client may take to send a request's headers (HTTP/1.1; also bounds the wait for
    /// the next request on a kept-alive connection). Default 30, hyper's own default: enough
    /// for any real client, short enough that slowloris connections are reaped.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay without a request in flight and without traffic before it
    /// is closed (HTTP/1.1 and HTTP/2). Default 60: Docker reuses connections within a pull or
    /// push, which has traffic every few milliseconds; nginx's `keepalive_timeout` is 75.
    pub idle_timeout_secs: u64,
    /// Seconds an upload's request body may send nothing before the request fails; the session
    /// keeps what was written and can be resumed. Default 60, as nginx's `client_body_timeout`.
    pub body_timeout_secs: u64,
    /// Seconds a response may wait for the client to read before the connection is closed.
    /// Default 60, as nginx's `send_timeout`.
    pub send_timeout_secs: u64,
    /// Uploads (PATCH, PUT with a body, monolithic POST) in progress at once.
    ///
    /// Default 256: fifty Docker clients pushing five layers each. Each holds an open file and
    /// up to about 1 MiB of batched body while the disk writes.
    pub max_concurrent_uploads: usize,
    /// Upload slots one client address may hold at once.
    ///
    /// Default a quarter of `max_concurrent_uploads` (64): a host pushing a dozen images at once
    /// fits, and one host (a CI runner gone wrong, or an attacker stalling its bodies) cannot
    /// take every slot and leave the others with `429`s.
    pub max_uploads_per_ip: usize,
    /// Streamed blob downloads (blobs over 256 KiB) in progress at once; smaller blobs come
    /// from memory and are not counted.
    ///
    /// Default 512: what the default read-ahead budget admits (two 128 KiB chunks each).
    pub max_concurrent_downloads: usize,
    /// Download slots one client address may hold at once. Default a quarter of
    /// `max_concurrent_downloads` (128), for the same reason as `max_uploads_per_ip`.
    pub max_downloads_per_ip: usize,
    /// Bytes read from disk and not yet written to a socket, summed over all downloads.
    ///
    /// Default 128 MiB: each streamed download is charged two 128 KiB chunks for its whole
    /// life (it reads one chunk at a time, only when the connection asks for more, while the
    /// connection still writes the previous one), so 512 downloads fit, and slow readers cannot
    /// grow the process (issue 9 measured 1.6 GB for 520 of them before this limit). Past the
    /// budget a download is refused with `429`, never queued.
    pub read_ahead_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            body_timeout_secs: 60,
            send_timeout_secs: 60,
            max_concurrent_uploads: 256,
            max_uploads_per_ip: 64,
            max_concurrent_downloads: 512,
            max_downloads_per_ip: 128,
            read_ahead_bytes: 128 * 1024 * 1024,
        }
    }
}

/// `[limits]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileLimits {
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    send_timeout_secs: Option<u64>,
    max_concurrent_uploads: Option<u64>,
    max_uploads_per_ip: Option<u64>,
    max_concurrent_downloads: Option<u64>,
    max_downloads_per_ip: Option<u64>,
    read_ahead_bytes: Option<u64>,
}

/// Applies `BERTH_REGISTRY_LIMITS_<KEY>` variables over the file's values.
pub(crate) fn overlay(
    limits: &mut Option<FileLimits>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let l = limits.get_or_insert_with(FileLimits::default);
    let fields: [(&str, &mut Option<u64>); 11] = [
        ("MAX_CONNECTIONS", &mut l.max_connections),
        ("MAX_CONNECTIONS_PER_IP", &mut l.max_connections_per_ip),
        ("HEADER_READ_TIMEOUT_SECS", &mut l.header_read_timeout_secs),
        ("IDLE_TIMEOUT_SECS", &mut l.idle_timeout_secs),
        ("BODY_TIMEOUT_SECS", &mut l.body_timeout_secs),
        ("SEND_TIMEOUT_SECS", &mut l.send_timeout_secs),
        ("MAX_CONCURRENT_UPLOADS", &mut l.max_concurrent_uploads),
        ("MAX_CONCURRENT_DOWNLOADS", &mut l.max_concurrent_downloads),
        ("MAX_UPLOADS_PER_IP", &mut l.max_uploads_per_ip),
        ("MAX_DOWNLOADS_PER_IP", &mut l.max_downloads_per_ip),
        ("READ_AHEAD_BYTES", &mut l.read_ahead_bytes),
    ];
    for (key, slot) in fields {
        let name = format!("BERTH_REGISTRY_LIMITS_{key}");
        if let Some(v) = env(&name).filter(|v| !v.is_empty()) {
            *slot = Some(parse_u64(&name, &v)?);
        }
    }
    Ok(())
}

/// Fills defaults and checks ranges.
pub(crate) fn build(raw: Option<FileLimits>) -> Result<Limits> {
    let raw = raw.unwrap_or_default();
    let d = Limits::default();
    let count = |key: &str, v: Option<u64>, default: usize, max: u64| -> Result<usize> {
        let Some(v) = v else { return Ok(default) };
        if !(1..=max).contains(&v) {
            return Err(invalid(key, format!("{v} is outside 1..={max}")));
        }
        Ok(usize::try_from(v).unwrap_or(usize::MAX))
    };
    let secs = |key: &str, v: Option<u64>, default: u64| -> Result<u64> {
        let Some(v) = v else { return Ok(default) };
        if !(1..=86_400).contains(&v) {
            return Err(invalid(key, format!("{v} is outside 1..=86400 seconds")));
        }
        Ok(v)
    };
    let max_concurrent_uploads = count(
        "limits.max_concurrent_uploads",
        raw.max_concurrent_uploads,
        d.max_concurrent_uploads,
        100_000,
    )?;
    let max_concurrent_downloads = count(
        "limits.max_concurrent_downloads",
        raw.max_concurrent_downloads,
        d.max_concurrent_downloads,
        100_000,
    )?;
    let per_ip = |key: &str, v: Option<u64>, total: usize| -> Result<usize> {
        let n = count(key, v, (total / 4).max(1), 100_000)?;
        if n > total {
            return Err(invalid(key, format!("{n} is above the total ({total})")));
        }
        Ok(n)
    };
    let limits = Limits {
        max_connections: count(
            "limits.max_connections",
            raw.max_connections,
            d.max_connections,
            1_000_000,
        )?,
        max_connections_per_ip: count(
            "limits.max_connections_per_ip",
            raw.max_connections_per_ip,
            d.max_connections_per_ip,
            1_000_000,
        )?,
        header_read_timeout_secs: secs(
            "limits.header_read_timeout_secs",
            raw.header_read_timeout_secs,
            d.header_read_timeout_secs,
        )?,
        idle_timeout_secs: secs(
            "limits.idle_timeout_secs",
            raw.idle_timeout_secs,
            d.idle_timeout_secs,
        )?,
        body_timeout_secs: secs(
            "limits.body_timeout_secs",
            raw.body_timeout_secs,
            d.body_timeout_secs,
        )?,
        send_timeout_secs: secs(
            "limits.send_timeout_secs",
            raw.send_timeout_secs,
            d.send_timeout_secs,
        )?,
        max_concurrent_uploads,
        max_uploads_per_ip: per_ip(
            "limits.max_uploads_per_ip",
            raw.max_uploads_per_ip,
            max_concurrent_uploads,
        )?,
        max_concurrent_downloads,
        max_downloads_per_ip: per_ip(
            "limits.max_downloads_per_ip",
            raw.max_downloads_per_ip,
            max_concurrent_downloads,
        )?,
        read_ahead_bytes: raw.read_ahead_bytes.unwrap_or(d.read_ahead_bytes),
    };
    let min_budget = 2 * DOWNLOAD_CHUNK_BYTES;
    if limits.read_ahead_bytes < min_budget {
        return Err(invalid(
            "limits.read_ahead_bytes",
            format!(
                "{} is below {min_budget} (one download: two {DOWNLOAD_CHUNK_BYTES}-byte chunks)",
                limits.read_ahead_bytes
            ),
        ));
    }
    if limits.max_connections_per_ip > limits.max_connections {
        return Err(invalid(
            "limits.max_connections_per_ip",
            format!(
                "{} is above max_connections ({})",
                limits.max_connections_per_ip, limits.max_connections
            ),
        ));
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(build(None).unwrap(), Limits::default());
    }

    #[test]
    fn env_overrides_file() {
        let mut raw = Some(FileLimits {
            max_connections: Some(10),
            ..FileLimits::default()
        });
        let env =
            |k: &str| (k == "BERTH_REGISTRY_LIMITS_MAX_CONNECTIONS_PER_IP").then(|| "3".to_owned());
        overlay(&mut raw, &env).unwrap();
        let l = build(raw).unwrap();
        assert_eq!((l.max_connections, l.max_connections_per_ip), (10, 3));
    }

    #[test]
    fn per_ip_shares_follow_the_totals() {
        let raw = Some(FileLimits {
            max_concurrent_uploads: Some(20),
            ..FileLimits::default()
        });
        let l = build(raw).unwrap();
        assert_eq!((l.max_uploads_per_ip, l.max_downloads_per_ip), (5, 128));
    }

    #[rstest]
    #[case(
        "BERTH_REGISTRY_LIMITS_MAX_UPLOADS_PER_IP",
        "300",
        "limits.max_uploads_per_ip"
    )]
    #[case("BERTH_REGISTRY_LIMITS_MAX_CONNECTIONS", "0", "limits.max_connections")]
    #[case(
        "BERTH_REGISTRY_LIMITS_BODY_TIMEOUT_SECS",
        "0",
        "limits.body_timeout_secs"
    )]
    #[case(
        "BERTH_REGISTRY_LIMITS_READ_AHEAD_BYTES",
        "1000",
        "limits.read_ahead_bytes"
    )]
    #[case(
        "BERTH_REGISTRY_LIMITS_MAX_CONNECTIONS_PER_IP",
        "5000",
        "limits.max_connections_per_ip"
    )]
    #[case(
        "BERTH_REGISTRY_LIMITS_IDLE_TIMEOUT_SECS",
        "soon",
        "BERTH_REGISTRY_LIMITS_IDLE_TIMEOUT_SECS"
    )]
    fn bad_values_name_the_key(#[case] var: &str, #[case] value: &str, #[case] key: &str) {
        let env = |k: &str| (k == var).then(|| value.to_owned());
        let mut raw = None;
        let err = overlay(&mut raw, &env)
            .and_then(|()| build(raw))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err:?} should name {key}");
    }
}
