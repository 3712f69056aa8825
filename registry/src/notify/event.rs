//! The CNCF registry's event envelope (`notifications/event.go`), field for field.

use serde::{Deserialize, Serialize};

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Event {
    /// Unique id.
    pub id: String,
    /// RFC 3339 time.
    pub timestamp: String,
    /// `push`, `pull`, `mount` or `delete`.
    pub action: String,
    /// What it happened to.
    pub target: Target,
    /// The request that caused it.
    pub request: RequestInfo,
    /// Who made the request.
    pub actor: Actor,
    /// This registry.
    pub source: Source,
}

/// `target`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Media type of the manifest or blob.
    pub media_type: String,
    /// Bytes (0 when the request did not say).
    pub size: u64,
    /// Digest.
    pub digest: String,
    /// Same as `size` (the CNCF registry sends both).
    pub length: u64,
    /// Repository.
    pub repository: String,
    /// Where to fetch it.
    pub url: String,
    /// Tag, for manifests pushed or pulled by tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `request`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RequestInfo {
    /// The request id (`X-Request-Id`).
    pub id: String,
    /// Client address.
    pub addr: String,
    /// `Host` header.
    pub host: String,
    /// HTTP method.
    pub method: String,
    /// `User-Agent`.
    pub useragent: String,
}

/// `actor`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Actor {
    /// Authenticated user, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `source`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Listen address of this registry.
    pub addr: String,
    /// Id of this process's run.
    #[serde(rename = "instanceID")]
    pub instance_id: String,
}

/// Now as RFC 3339 UTC with nanoseconds (`2006-01-02T15:04:05.999999999Z`).
#[must_use]
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_nanos())
}

/// Seconds since the epoch as RFC 3339 UTC (civil-from-days, H. Hinnant).
#[must_use]
pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            super::rfc3339(1_709_251_199, 5),
            "2024-02-29T23:59:59.000000005Z"
        );
    }
}
