//! Progress on the terminal: bars when stderr is one, plain log lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use starling_models::train::{Progress, Stage};

/// Whether to draw bars: only for a person watching a terminal.
pub(crate) fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Draws a bar per training epoch and evaluation on stderr when it is a
/// terminal; otherwise logs one line per finished stage.
pub(crate) struct Bars {
    multi: Option<MultiProgress>,
    bar: Option<ProgressBar>,
}

impl Bars {
    /// Bars under `multi` (so they stack with others), or log lines when not interactive.
    pub(crate) fn new(multi: Option<MultiProgress>) -> Self {
        Self { multi, bar: None }
    }
}

fn describe(stage: Stage) -> String {
    match stage {
        Stage::Epoch { epoch, of } => format!("epoch {epoch}/{of}"),
        Stage::Evaluate => "evaluate".to_owned(),
    }
}

impl Progress for Bars {
    fn start(&mut self, stage: Stage, samples: u64) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(ProgressBar::new(samples));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:>11} {wide_bar} {pos}/{len} {per_sec:>12} loss {msg}")
                .expect("a valid template"),
        );
        bar.set_prefix(describe(stage));
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn advance(&mut self, samples: u64, loss: f32) {
        if let Some(bar) = &self.bar {
            bar.inc(samples);
            bar.set_message(format!("{loss:.4}"));
        }
    }

    fn finish(&mut self, stage: Stage, loss: f32, accuracy: Option<f32>) {
        let accuracy = accuracy.map(|a| format!(", accuracy {:.2}%", 100.0 * a)).unwrap_or_default();
        match self.bar.take() {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}: loss {loss:.4}{accuracy}", describe(stage)),
        }
    }
}

/// A bar over a known number of steps (rounds), or nothing when not interactive.
pub(crate) fn steps_bar(len: u64, what: &str) -> (Option<MultiProgress>, ProgressBar) {
    if !interactive() {
        return (None, ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden()));
    }
    let multi = MultiProgress::new();
    let bar = multi.add(ProgressBar::new(len));
    bar.set_style(
        ProgressStyle::with_template(&format!("{what} {{pos}}/{{len}} {{wide_bar}} {{elapsed_precise}} {{msg}}"))
            .expect("a valid template"),
    );
    (Some(multi), bar)
}
