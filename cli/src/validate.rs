//! `starling validate`: take part in a task as a validator until it ends or
//! Ctrl-C. The validator client does the work (fetch assignments, rebuild
//! each candidate, score it on held-out data, sign the score); this command
//! wires it to the terminal.

use anyhow::Result;
use starling_client::Ended;
use starling_models::train::Features;
use starling_validator::{ValidatorClient, ValidatorOptions};

use crate::device::DeviceArg;
use crate::participant::{ParticipantArgs, introduce};
use crate::progress::{Bars, interactive};
use crate::runtime::{block_on, shutdown_on_signal};
use crate::untrusted::printable;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    run: ParticipantArgs,
    /// Examples evaluated per batch (memory, not results, depends on it).
    #[arg(long, default_value_t = 500)]
    eval_batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let me = args.run.client.identity()?;
    // Held-out data: the test split of --data, never what trainers train on.
    let data = args.run.data(true)?;
    let samples = data.len();
    let held_out = Features::new(&data);
    drop(data);
    let device = args.device.device()?;
    let options = ValidatorOptions {
        retry: args.run.retry(),
        poll: args.run.poll()?,
        seed: args.run.seed(),
        eval_batch: args.eval_batch.max(1),
    };
    let cache = args.run.cache("validator")?;
    let task = args.run.task;
    block_on(async move {
        let shutdown = shutdown_on_signal();
        let mut coordinator = args.run.client.connect()?;
        introduce(&mut coordinator, task, "validator", samples).await?;
        eprintln!("validating as {} on {}; Ctrl-C to leave", me.public_key(), args.device.name());
        let client = ValidatorClient::new(me, coordinator.into_transport(), &cache, device, options)?;
        let mut bars = Bars::new(interactive().then(indicatif::MultiProgress::new));
        let report = client.run_task(task, &held_out, &mut bars, shutdown).await?;
        for scored in &report.scored {
            let what = match (&scored.score, &scored.rejected) {
                (_, Some(why)) => format!("rejected ({why})"),
                (Some(score), None) => format!(
                    "accuracy {:.2}%, loss {:.4}, improvement {:+.2} points",
                    100.0 * score.accuracy,
                    score.loss,
                    100.0 * score.improvement
                ),
                (None, None) => "already scored earlier".to_owned(),
            };
            println!("round {}: submission {} scored: {what}", scored.round, scored.submission);
        }
        for (submission, why) in &report.skipped {
            println!("submission {submission}: skipped ({}: {})", why.code, printable(&why.message));
        }
        match report.ended {
            Ended::TaskFinished => println!("task {task} finished: {} score(s) accepted", report.scored.len()),
            Ended::Shutdown => println!("left task {task}: {} score(s) accepted so far", report.scored.len()),
        }
        Ok(())
    })
}
