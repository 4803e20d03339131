//! The coordinator's own counters, rendered for `GET /metrics` in
//! Prometheus' text exposition format (version 0.0.4).
//!
//! Plain atomics rather than a metrics library: a handful of counters, bumped
//! on paths that already wait on a database, need nothing more. They count
//! what this process saw since it started; Prometheus' `rate()` and
//! `increase()` absorb the reset a restart causes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use starling_protocol::{ErrorCode, WireError};

/// The counters, shared by every clone of the service.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Answered requests, each counted once by the request pipeline: index 0
    /// counts successes, index `i + 1` refusals with [`ErrorCode::ALL`]`[i]`.
    requests: Box<[AtomicU64]>,
    /// Updates recorded whose payload passed the pre-storage checks.
    submissions_valid: AtomicU64,
    /// Updates recorded as their trainer's invalid submission of the round.
    submissions_invalid: AtomicU64,
    /// Validator scores recorded.
    scores: AtomicU64,
    /// Rounds whose settlement this process committed to a task's machine.
    rounds_settled: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: (0..=ErrorCode::ALL.len()).map(|_| AtomicU64::new(0)).collect(),
            submissions_valid: AtomicU64::new(0),
            submissions_invalid: AtomicU64::new(0),
            scores: AtomicU64::new(0),
            rounds_settled: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a request's answer: `ok`, or its error code.
    pub(crate) fn answered<T>(&self, outcome: &Result<T, WireError>) {
        let index = match outcome {
            Ok(_) => 0,
            // Every code is in `ALL`; should one ever be missing, it counts as
            // the first (`unknown`) rather than panicking in a request path.
            Err(error) => ErrorCode::ALL.iter().position(|&code| code == error.code).map_or(1, |i| i + 1),
        };
        self.requests[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a recorded update: `valid` when its payload passed the checks.
    pub(crate) fn submission(&self, valid: bool) {
        let counter = if valid { &self.submissions_valid } else { &self.submissions_invalid };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a recorded score.
    pub(crate) fn score(&self) {
        self.scores.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a round whose settlement was committed.
    pub(crate) fn round_settled(&self) {
        self.rounds_settled.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with `tasks_running` (a gauge the caller reads
    /// from the task table) alongside the counters.
    pub(crate) fn render(&self, tasks_running: u64) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut text = String::with_capacity(4096);
        header(&mut text, "starling_requests_total", "counter", "Requests answered, by outcome: ok or the error code.");
        let outcomes = std::iter::once("ok").chain(ErrorCode::ALL.iter().map(|code| code.as_str()));
        for (outcome, counter) in outcomes.zip(self.requests.iter()) {
            let _ = writeln!(text, "starling_requests_total{{outcome=\"{outcome}\"}} {}", load(counter));
        }
        let counters = [
            (
                "starling_submissions_valid_total",
                "Updates recorded whose payload passed the pre-storage checks.",
                &self.submissions_valid,
            ),
            (
                "starling_submissions_invalid_total",
                "Updates recorded as invalid (bad shapes, non-finite values, norm too large); their trainers are slashed.",
                &self.submissions_invalid,
            ),
            ("starling_scores_total", "Validator scores recorded.", &self.scores),
            ("starling_rounds_settled_total", "Rounds settled (rewards paid, slashes applied).", &self.rounds_settled),
        ];
        for (name, help, counter) in counters {
            header(&mut text, name, "counter", help);
            let _ = writeln!(text, "{name} {}", load(counter));
        }
        header(&mut text, "starling_tasks_running", "gauge", "Unfinished tasks this coordinator drives.");
        let _ = writeln!(text, "starling_tasks_running {tasks_running}");
        text
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family. Help texts are ours
/// and hold no backslash or line break, so they need no escaping.
fn header(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_counts() {
        let metrics = Metrics::default();
        metrics.answered::<()>(&Ok(()));
        metrics.answered::<()>(&Ok(()));
        metrics.answered::<()>(&Err(WireError::new(ErrorCode::Replay, "again")));
        metrics.submission(true);
        metrics.submission(false);
        metrics.submission(false);
        metrics.score();
        metrics.round_settled();
        let text = metrics.render(3);
        for line in [
            "# TYPE starling_requests_total counter",
            "starling_requests_total{outcome=\"ok\"} 2",
            "starling_requests_total{outcome=\"replay\"} 1",
            "starling_requests_total{outcome=\"non_finite\"} 0",
            "starling_submissions_valid_total 1",
            "starling_submissions_invalid_total 2",
            "starling_scores_total 1",
            "starling_rounds_settled_total 1",
            "# TYPE starling_tasks_running gauge",
            "starling_tasks_running 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample line is `name[{labels}] value`, every family typed once.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
        }
        assert_eq!(text.matches("# TYPE").count(), 6);
    }
}
