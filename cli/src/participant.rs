//! What `starling train` and `starling validate` share: the task, the local
//! data, the cache, and how patiently to retry and poll.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use starling_client::Backoff;
use starling_models::data::{Dataset, Mnist, Verify, partition};
use starling_protocol::{TaskId, TaskInfo};

use crate::client::{ClientArgs, Coordinator};
use crate::units::star;

/// The flags of a trainer or validator run.
#[derive(Debug, clap::Args)]
pub(crate) struct ParticipantArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The task to take part in.
    #[arg(long)]
    pub(crate) task: TaskId,
    /// Your data: a directory with the four MNIST IDX files (raw or .gz; any
    /// data of MNIST's shape). Default: $STARLING_DATA, else the `starling data download` cache.
    #[arg(long, env = "STARLING_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Use one share of the data: K/N is the K-th (from 1) of N disjoint,
    /// equal, IID shares, so several nodes can run on one copy of a dataset.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Use at most this many examples (after --shard).
    #[arg(long)]
    samples: Option<usize>,
    /// Where global models are cached by hash and finished work is
    /// remembered (so a restart never submits twice). Default: ~/.cache/starling/<role>.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Attempts at a failed request (lost connection, coordinator restarting)
    /// before giving up, with exponential backoff up to 30 s; 0: for ever.
    #[arg(long, default_value_t = 12)]
    retries: u32,
    /// The longest wait between checks for the next round, in seconds.
    #[arg(long, default_value_t = 15.0)]
    max_poll_secs: f64,
    /// Seeds batch order and retry jitter. Default: random.
    #[arg(long)]
    seed: Option<u64>,
}

/// One of N equal shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    index: usize,
    of: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text.split_once('/').and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, of)) if index >= 1 && index <= of => Ok(Self { index, of }),
            _ => Err(format!("`{text}` is not a share K/N with 1 ≤ K ≤ N, like 2/10")),
        }
    }
}

/// The seed every node uses to split a dataset into shares: the shares of
/// one N are disjoint only if everyone cuts the same way.
const SHARD_SEED: u64 = 0x5354_4152;

impl ParticipantArgs {
    /// The MNIST-shaped data in --data: its training set (`test == false`)
    /// or its test set, cut to --shard and --samples.
    pub(crate) fn data(&self, test: bool) -> Result<Dataset> {
        let dir = crate::data::locate_mnist(self.data.clone())?;
        let mnist = Mnist::load(&dir, Verify::ShapeOnly).with_context(|| format!("loading {}", dir.display()))?;
        let mut data = if test { mnist.test } else { mnist.train };
        if let Some(shard) = self.shard {
            let parts = partition::iid(data.len(), shard.of, SHARD_SEED)?;
            data = data.subset(&parts[shard.index - 1]);
        }
        if let Some(samples) = self.samples {
            if samples == 0 {
                bail!("--samples must be at least 1");
            }
            data = data.subset(&(0..samples.min(data.len())).collect::<Vec<_>>());
        }
        Ok(data)
    }

    /// The cache directory for `role` (`trainer`, `validator`).
    pub(crate) fn cache(&self, role: &str) -> Result<PathBuf> {
        match &self.cache {
            Some(dir) => Ok(dir.clone()),
            None => Ok(crate::data::default_cache()?.with_file_name(role)),
        }
    }

    /// Retries of failed requests.
    pub(crate) fn retry(&self) -> Backoff {
        Backoff { max_attempts: (self.retries > 0).then_some(self.retries), ..Backoff::RETRY }
    }

    /// Polling for the next round.
    pub(crate) fn poll(&self) -> Result<Backoff> {
        if !(self.max_poll_secs.is_finite() && self.max_poll_secs > 0.0) {
            bail!("--max-poll-secs must be a positive number of seconds");
        }
        let max = Duration::from_secs_f64(self.max_poll_secs);
        Ok(Backoff { initial: Backoff::POLL.initial.min(max), max, ..Backoff::POLL })
    }

    /// The seed, random unless given.
    pub(crate) fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(rand::random)
    }
}

/// Reads the task before joining it (which also proves the coordinator is
/// there and trusted) and says what it is.
pub(crate) async fn introduce(
    coordinator: &mut Coordinator,
    task: TaskId,
    role: &str,
    samples: usize,
) -> Result<TaskInfo> {
    let info = coordinator.task(task).await?;
    let spec = &info.spec;
    let min = if role == "trainer" { spec.min_trainer_stake } else { spec.min_validator_stake };
    eprintln!(
        "task {task}: {} on {}, {} round(s), rule {}, pool {}; as {role} on {samples} examples (needs a {role} stake of {})",
        spec.model.name,
        spec.data.dataset,
        spec.rounds,
        spec.aggregation.rule.name(),
        star(spec.reward_pool),
        star(min)
    );
    Ok(info)
}
