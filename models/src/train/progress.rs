//! Progress reporting, decoupled from how it is shown.

/// What a run of batches is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Local training, epoch `epoch` (from 1) of `of`.
    Epoch {
        /// This epoch, from 1.
        epoch: u32,
        /// Epochs in the run.
        of: u32,
    },
    /// Evaluating a model.
    Evaluate,
}

/// Receives progress from training and evaluation. A terminal front end
/// draws bars from it; [`Quiet`] ignores it. Called on the training thread
/// between batches, so implementations should be cheap.
pub trait Progress {
    /// A stage of `samples` samples begins.
    fn start(&mut self, stage: Stage, samples: u64) {
        let _ = (stage, samples);
    }
    /// `samples` more samples are done; `loss` is the running mean loss of the stage.
    fn advance(&mut self, samples: u64, loss: f32) {
        let _ = (samples, loss);
    }
    /// The stage ended with mean loss `loss` (and `accuracy` when evaluating).
    fn finish(&mut self, stage: Stage, loss: f32, accuracy: Option<f32>) {
        let _ = (stage, loss, accuracy);
    }
}

/// Progress that goes nowhere: for libraries, tests and non-terminal output.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {}
