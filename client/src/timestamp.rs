//! Docker's time arguments (`logs --since/--until`, `prune --filter until=…`): a Go duration
//! relative to now (`10m`, `1h30m`), an RFC 3339 date or a shorter form of one
//! (`2006-01-02`, `2006-01-02T15:04`, in local time without a zone), or Unix seconds with an
//! optional fraction (`1700000000.5`). Follows moby's `api/types/time.GetTimestamp`.
//! Also the RFC3339Nano timestamps Berth records (`state.json`, logs, networks).

use chrono::{
    DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone as _, Utc,
};

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers with units `ns`, `us`
/// (`µs`), `ms`, `s`, `m`, `h`; nanoseconds.
///
/// # Errors
/// Go's `time: invalid duration "…"` (or `missing unit`/`unknown unit`).
pub fn parse_go_duration(value: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration \"{value}\"");
    let (negative, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..num_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let n: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{value}\"")),
            u => {
                return Err(format!(
                    "time: unknown unit \"{u}\" in duration \"{value}\""
                ))
            }
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    #[allow(clippy::cast_possible_truncation)]
    let ns = total.round() as i128;
    Ok(if negative { -ns } else { ns })
}

/// Unix `seconds[.nanoseconds]` (moby's `parseTimestamp`).
fn parse_unix(value: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    DateTime::from_timestamp(secs, nanos)
}

/// A time argument as an instant, relative ones counted back from `now`.
///
/// # Errors
/// moby's `failed to parse value as time or duration: "…"`, or the date parser's complaint
/// for a value that looks like a date.
pub fn parse(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if value != "0" {
        if let Ok(ns) = parse_go_duration(value) {
            let ns =
                i64::try_from(ns).map_err(|_| format!("time: invalid duration \"{value}\""))?;
            return Ok(now - chrono::Duration::nanoseconds(ns));
        }
    }
    let in_location = !(value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3);
    let parsed = if in_location {
        parse_local(value)
    } else {
        parse_zoned(value)
    };
    match parsed {
        Some(t) => Ok(t),
        None if value.contains('-') => Err(format!("parsing time \"{value}\": invalid date")),
        None => parse_unix(value)
            .ok_or_else(|| format!("failed to parse value as time or duration: \"{value}\"")),
    }
}

/// Formats without a zone, read in the local time zone.
fn parse_local(value: &str) -> Option<DateTime<Utc>> {
    let naive = if value.contains('T') {
        let mut v = value.to_owned();
        match value.matches(':').count() {
            0 => v.push_str(":00:00"),
            1 => v.push_str(":00"),
            _ => {}
        }
        NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S%.f").ok()?
    } else {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
    };
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats with a zone (`Z` or `±hh:mm`).
fn parse_zoned(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    // Split off the zone: `Z`/`z` or the last `+`/`-` (after the date's own dashes).
    let (body, zone) = if let Some(b) = value.strip_suffix(['Z', 'z']) {
        (b, FixedOffset::east_opt(0)?)
    } else {
        let i = value.rfind(['+', '-'])?;
        let (b, z) = value.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':')?;
        let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
        (b, FixedOffset::east_opt(sign * secs)?)
    };
    let naive = if body.contains('T') {
        let mut v = body.to_owned();
        match body.matches(':').count() {
            0 => v.push_str(":00:00"),
            1 => v.push_str(":00"),
            _ => {}
        }
        NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S%.f").ok()?
    } else {
        NaiveDate::parse_from_str(body, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
    };
    zone.from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Now, as Docker's RFC3339Nano (trailing zeros of the fraction dropped).
#[must_use]
pub fn now_rfc3339() -> String {
    rfc3339_nano(Utc::now())
}

/// Go's `time.RFC3339Nano`: `2024-01-02T03:04:05.1234Z`.
#[must_use]
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('Z').trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[rstest]
    #[case("10m", 600_000_000_000)]
    #[case("1h30m", 5_400_000_000_000)]
    #[case("1.5h", 5_400_000_000_000)]
    #[case("300ms", 300_000_000)]
    #[case("-2s", -2_000_000_000)]
    #[case("0", 0)]
    #[case("1us", 1000)]
    fn go_durations(#[case] v: &str, #[case] ns: i128) {
        assert_eq!(parse_go_duration(v), Ok(ns));
    }

    #[rstest]
    #[case("", "time: invalid duration \"\"")]
    #[case("10", "time: missing unit in duration \"10\"")]
    #[case("10x", "time: unknown unit \"x\" in duration \"10x\"")]
    #[case("m", "time: invalid duration \"m\"")]
    fn bad_go_durations(#[case] v: &str, #[case] e: &str) {
        assert_eq!(parse_go_duration(v).unwrap_err(), e);
    }

    #[test]
    fn timestamps_like_docker() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(parse("10m", now).unwrap(), at("2024-05-01T11:50:00Z"));
        assert_eq!(parse("1h30m", now).unwrap(), at("2024-05-01T10:30:00Z"));
        assert_eq!(
            parse("2013-01-02T13:23:37Z", now).unwrap(),
            at("2013-01-02T13:23:37Z")
        );
        assert_eq!(
            parse("2013-01-02T13:23:37.5+02:00", now).unwrap(),
            at("2013-01-02T11:23:37.5Z")
        );
        assert_eq!(
            parse("2013-01-02T13:23Z", now).unwrap(),
            at("2013-01-02T13:23:00Z")
        );
        assert_eq!(
            parse("1700000000", now).unwrap(),
            at("2023-11-14T22:13:20Z")
        );
        assert_eq!(
            parse("1700000000.25", now).unwrap(),
            at("2023-11-14T22:13:20.25Z")
        );
        assert_eq!(parse("0", now).unwrap(), at("1970-01-01T00:00:00Z"));
        // Local time without a zone.
        let local = parse("2013-01-02", now).unwrap();
        let want = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2013, 1, 2)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(local, want);
        assert!(parse("2013-01-02T10:11:12", now).is_ok());
        assert_eq!(
            parse("yesterday", now).unwrap_err(),
            "failed to parse value as time or duration: \"yesterday\""
        );
        assert!(parse("2013-13-45", now).is_err());
    }

    #[test]
    fn times_are_rfc3339_nano() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2024-01-02T03:04:05.12Z");
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2024-01-02T03:04:05Z");
    }
}
