//! Wall-clock formatting without a date library: RFC 3339 for log lines and IMF-fixdate for cookies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `2026-11-25T13:40:00.123456789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = since_epoch(t);
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (y, m, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// `Wed, 25 Nov 2026 13:40:00 GMT`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = i64::try_from(since_epoch(t).as_secs()).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil(days);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)],
        MONTHS[(m as usize).saturating_sub(1)],
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

pub fn unix_millis(t: SystemTime) -> u128 {
    since_epoch(t).as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_078_000);
        assert_eq!(http_date(t), "Tue, 25 Nov 2025 13:40:00 GMT");
        assert_eq!(rfc3339(t), "2025-11-25T13:40:00.000000000Z");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
