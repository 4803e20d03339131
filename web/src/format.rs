//! How numbers, amounts, times and keys are written for people: one
//! function per kind, so a value reads the same in a table, a tooltip, an
//! error message of the API and the CLI.

use starling_protocol::{AggregationRule, AggregationSpec, ServerOptimizer};

/// µSTAR in one STAR.
const MICRO_PER_STAR: u128 = 1_000_000;

/// µSTAR as STAR with six decimals, e.g. `12.500000 STAR`: what the CLI
/// prints, exact (integer arithmetic, no float).
pub(crate) fn star(micro: u64) -> String {
    star_wide(u128::from(micro))
}

/// [`star`] for effective stakes, which may pass `u64::MAX` µSTAR.
pub(crate) fn star_wide(micro: u128) -> String {
    format!("{}.{:06} STAR", micro / MICRO_PER_STAR, micro % MICRO_PER_STAR)
}

/// A measured accuracy (a fraction) as a percentage with two decimals,
/// e.g. `75.00%`; `–` when not measured or not a number.
pub(crate) fn accuracy(value: Option<f64>) -> String {
    finite(value).map_or_else(dash, |v| format!("{:.2}%", v * 100.0))
}

/// A loss with four decimals, e.g. `0.5000`; `–` when not measured or not a number.
pub(crate) fn loss(value: Option<f64>) -> String {
    finite(value).map_or_else(dash, |v| format!("{v:.4}"))
}

/// A consensus score with four decimals, e.g. `-2.5000`; `–` when absent.
pub(crate) fn score(value: Option<f64>) -> String {
    finite(value).map_or_else(dash, |v| format!("{v:.4}"))
}

/// The value if it is a finite number: the pages skip NaN and infinities as
/// if they had not been measured.
pub(crate) fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// What the pages show for a missing value.
pub(crate) fn dash() -> String {
    "–".to_owned()
}

/// The first 12 hex digits of a key or hash, for tables (the full value goes
/// in the link or a `title`).
pub(crate) fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// Seconds since the Unix epoch as a UTC date and time to the second, e.g.
/// `2025-06-15 14:48:20 UTC`.
pub(crate) fn utc(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let (hour, minute, second) = (unix_secs % 86_400 / 3_600, unix_secs % 3_600 / 60, unix_secs % 60);
    let (year, month, day) = civil_date(days);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// The proleptic Gregorian `(year, month, day)` of a day counted from
/// 1970-01-01 (day 0): Howard Hinnant's `civil_from_days` for days ≥ 0.
/// Shared with the CLI, which prints dates too.
pub fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// A duration in seconds, with minutes when it is a whole number of them,
/// e.g. `600 s (10 min)`.
pub(crate) fn seconds(secs: u32) -> String {
    if secs >= 60 && secs.is_multiple_of(60) { format!("{secs} s ({} min)", secs / 60) } else { format!("{secs} s") }
}

/// The aggregation rule with its parameters, e.g. `multi-krum (f = 2, select 3)`.
pub(crate) fn rule(rule: &AggregationRule) -> String {
    let name = rule.name();
    match *rule {
        AggregationRule::FedAvg | AggregationRule::Median | AggregationRule::Best => name.to_owned(),
        AggregationRule::TrimmedMean { beta } => format!("{name} (β = {beta})"),
        AggregationRule::Krum { byzantine } | AggregationRule::Bulyan { byzantine } => {
            format!("{name} (f = {byzantine})")
        }
        AggregationRule::MultiKrum { byzantine, select } => format!("{name} (f = {byzantine}, select {select})"),
    }
}

/// The server optimizer with its parameters, or `none`.
pub(crate) fn optimizer(spec: &AggregationSpec) -> String {
    let Some(optimizer) = &spec.server_optimizer else { return "none".to_owned() };
    let name = optimizer.name();
    match *optimizer {
        ServerOptimizer::FedAvgM { server_lr, momentum } => {
            format!("{name} (server lr {server_lr}, momentum {momentum})")
        }
        ServerOptimizer::FedAdagrad { server_lr, tau } => format!("{name} (server lr {server_lr}, τ = {tau})"),
        ServerOptimizer::FedAdam { server_lr, beta1, beta2, tau }
        | ServerOptimizer::FedYogi { server_lr, beta1, beta2, tau } => {
            format!("{name} (server lr {server_lr}, β₁ = {beta1}, β₂ = {beta2}, τ = {tau})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_star_with_six_decimals() {
        assert_eq!(star(0), "0.000000 STAR");
        assert_eq!(star(1), "0.000001 STAR");
        assert_eq!(star(150_000_000), "150.000000 STAR");
        assert_eq!(star(12_500_000), "12.500000 STAR");
        assert_eq!(star(u64::MAX), "18446744073709.551615 STAR");
        assert_eq!(star_wide(3 * u128::from(u64::MAX)), "55340232221128.654845 STAR");
    }

    #[test]
    fn measurements_skip_what_is_not_a_number() {
        assert_eq!(accuracy(Some(0.75)), "75.00%");
        assert_eq!(accuracy(Some(0.123_456)), "12.35%");
        assert_eq!(loss(Some(0.5)), "0.5000");
        assert_eq!(score(Some(-2.5)), "-2.5000");
        for missing in [None, Some(f64::NAN), Some(f64::INFINITY)] {
            assert_eq!(accuracy(missing), "–");
            assert_eq!(loss(missing), "–");
            assert_eq!(score(missing), "–");
        }
    }

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_750_000_104), "2025-06-15 15:08:24 UTC");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00:00 UTC");
        // 2024 was a leap year.
        assert_eq!(utc(1_709_164_800), "2024-02-29 00:00:00 UTC");
        assert_eq!(seconds(600), "600 s (10 min)");
        assert_eq!(seconds(90), "90 s");
    }

    #[test]
    fn rules_name_their_parameters() {
        assert_eq!(rule(&AggregationRule::FedAvg), "fedavg");
        assert_eq!(rule(&AggregationRule::TrimmedMean { beta: 0.1 }), "trimmed-mean (β = 0.1)");
        assert_eq!(rule(&AggregationRule::MultiKrum { byzantine: 2, select: 3 }), "multi-krum (f = 2, select 3)");
        let mut spec = AggregationSpec::plain(AggregationRule::Median);
        assert_eq!(optimizer(&spec), "none");
        spec.server_optimizer = Some(ServerOptimizer::FedAvgM { server_lr: 1.0, momentum: 0.9 });
        assert_eq!(optimizer(&spec), "fedavgm (server lr 1, momentum 0.9)");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
    }
}
