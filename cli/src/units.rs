//! Amounts and times as people type and read them: STAR with up to six
//! decimals (parsed exactly, never through a float), rates as fractions or
//! percentages, lock-ups as days and dates.

use std::time::{SystemTime, UNIX_EPOCH};

use starling_staking::{Amount, MICRO_PER_STAR};

/// Digits after the point that µ-units allow.
const DECIMALS: usize = 6;

/// `text` as an exact count of millionths: `12` → 12_000_000, `0.5` →
/// 500_000, `1.000001` → 1_000_001. Digits only, one optional point, at
/// most six decimals; no sign, exponent or separators.
fn parse_millionths(text: &str) -> Result<u64, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(format!("`{text}` is not a number like 12 or 0.5"));
    }
    if fraction.len() > DECIMALS {
        return Err(format!("`{text}` has more than {DECIMALS} decimals (the smallest unit is 0.000001)"));
    }
    let too_large = || format!("`{text}` is too large");
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let fraction: u64 = format!("{fraction:0<DECIMALS$}").parse().expect("six ASCII digits");
    whole.checked_mul(MICRO_PER_STAR).and_then(|w| w.checked_add(fraction)).ok_or_else(too_large)
}

/// µSTAR in `text`, written in STAR with up to six decimals (`10`, `0.25`),
/// optionally followed by `STAR`.
pub(crate) fn parse_star(text: &str) -> Result<u64, String> {
    let number = text.trim().strip_suffix("STAR").unwrap_or(text).trim();
    parse_millionths(number)
}

/// A rate in parts per million: a fraction (`0.05`) or a percentage (`5%`).
pub(crate) fn parse_rate_ppm(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let ppm = match text.strip_suffix('%') {
        Some(percent) => {
            let millionths = parse_millionths(percent.trim())?;
            if millionths % 100 != 0 {
                return Err(format!("`{text}` is finer than 1 part per million"));
            }
            millionths / 100
        }
        None => parse_millionths(text)?,
    };
    u32::try_from(ppm).map_err(|_| format!("`{text}` is out of range"))
}

/// µSTAR as STAR with six decimals, e.g. `12.500000 STAR`.
pub(crate) fn star(micro: u64) -> String {
    Amount::from_micro(micro).to_string()
}

/// Parts per million as a percentage, e.g. `5%` or `12.5%`.
pub(crate) fn percent(ppm: u32) -> String {
    let text = format!("{}.{:04}", ppm / 10_000, ppm % 10_000);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When a lock ends, relative to `now_ms`: `unlocked`, or `unlocks in 29 d
/// 23 h (2026-07-01 12:00 UTC)`.
pub(crate) fn unlock(unlock_at_ms: u64, now_ms: u64) -> String {
    if unlock_at_ms <= now_ms {
        return "unlocked".to_owned();
    }
    let minutes = (unlock_at_ms - now_ms).div_ceil(60_000);
    let (days, hours, minutes) = (minutes / 1_440, minutes / 60 % 24, minutes % 60);
    let left = match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    };
    format!("unlocks in {left} ({})", utc(unlock_at_ms / 1_000))
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian calendar).
pub(crate) fn utc(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let (hour, minute) = (unix_secs % 86_400 / 3_600, unix_secs % 3_600 / 60);
    let (year, month, day) = starling_web::civil_date(days);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_amounts_parse_exactly() {
        assert_eq!(parse_star("12"), Ok(12_000_000));
        assert_eq!(parse_star("0.5"), Ok(500_000));
        assert_eq!(parse_star(".5"), Ok(500_000));
        assert_eq!(parse_star("1.000001"), Ok(1_000_001));
        assert_eq!(parse_star("3."), Ok(3_000_000));
        assert_eq!(parse_star("7 STAR"), Ok(7_000_000));
        // 0.1 + 0.2 is no float here.
        assert_eq!(parse_star("0.3"), Ok(300_000));
        assert_eq!(parse_star("18446744073709.551615"), Ok(u64::MAX));
        for bad in ["", ".", "-1", "+1", "1e6", "1.0000001", "1,5", "abc", "1.2.3", "18446744073709.551616"] {
            assert!(parse_star(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_fractions_or_percentages() {
        assert_eq!(parse_rate_ppm("0.05"), Ok(50_000));
        assert_eq!(parse_rate_ppm("5%"), Ok(50_000));
        assert_eq!(parse_rate_ppm("12.5%"), Ok(125_000));
        assert_eq!(parse_rate_ppm("0.0001%"), Ok(1));
        assert!(parse_rate_ppm("0.00001%").is_err());
        assert_eq!(percent(50_000), "5%");
        assert_eq!(percent(125_000), "12.5%");
        assert_eq!(percent(0), "0%");
    }

    #[test]
    fn amounts_and_times_print_for_people() {
        assert_eq!(star(12_500_000), "12.500000 STAR");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59 UTC");
        assert_eq!(unlock(1_000, 2_000), "unlocked");
        let day = 86_400_000;
        assert!(unlock(30 * day, 0).starts_with("unlocks in 30 d 0 h (1970-01-31"), "{}", unlock(30 * day, 0));
        assert_eq!(unlock(90 * 60_000, 0), "unlocks in 1 h 30 min (1970-01-01 01:30 UTC)");
    }
}
