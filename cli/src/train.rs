//! `starling train`: take part in a task as a trainer until it ends or
//! Ctrl-C. The trainer client does the work (join, fetch the global model
//! by hash, train, upload the signed update, retry, resume); this command
//! wires it to the terminal.

use anyhow::Result;
use starling_client::Ended;
use starling_models::train::Features;
use starling_trainer::{TrainerClient, TrainerOptions};

use crate::device::DeviceArg;
use crate::participant::{ParticipantArgs, introduce};
use crate::progress::{Bars, interactive};
use crate::runtime::{block_on, shutdown_on_signal};
use crate::untrusted::printable;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    run: ParticipantArgs,
    #[command(flatten)]
    device: DeviceArg,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let me = args.run.client.identity()?;
    let data = args.run.data(false)?;
    let samples = data.len();
    let features = Features::new(&data);
    drop(data);
    let device = args.device.device()?;
    let options = TrainerOptions { retry: args.run.retry(), poll: args.run.poll()?, seed: args.run.seed() };
    let cache = args.run.cache("trainer")?;
    let task = args.run.task;
    block_on(async move {
        let shutdown = shutdown_on_signal();
        let mut coordinator = args.run.client.connect()?;
        introduce(&mut coordinator, task, "trainer", samples).await?;
        eprintln!("training as {} on {}; Ctrl-C to leave", me.public_key(), args.device.name());
        let client = TrainerClient::new(me, coordinator.into_transport(), &cache, device, options)?;
        let mut bars = Bars::new(interactive().then(indicatif::MultiProgress::new));
        let report = client.run_task(task, &features, &mut bars, shutdown).await?;
        for (round, submission) in &report.submitted {
            match submission {
                Some(id) => println!("round {round}: update {id} accepted"),
                None => println!("round {round}: update already accepted earlier"),
            }
        }
        for (round, why) in &report.skipped {
            println!("round {round}: skipped ({}: {})", why.code, printable(&why.message));
        }
        match report.ended {
            Ended::TaskFinished => println!("task {task} finished: {} update(s) accepted", report.submitted.len()),
            Ended::Shutdown => println!("left task {task}: {} update(s) accepted so far", report.submitted.len()),
        }
        Ok(())
    })
}
