//! `starling task create|show`: post a task (its reward pool escrowed from
//! your balance) with a freshly initialised zoo model, and look one up.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use starling_models::zoo::{Model, ModelKind};
use starling_protocol::{AggregationSpec, CreateTask, ResponseBody, TaskId, TaskInfo, TaskSpec};

use crate::client::{ClientArgs, unexpected};
use crate::rule_flags::RuleName;
use crate::runtime::block_on;
use crate::units::{parse_star, star, utc};
use crate::untrusted::printable;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a task: sign its spec, upload its initial model and escrow its
    /// reward pool from your free balance. Prints the new task's id.
    Create(Box<CreateArgs>),
    /// Show a task's spec and where its current round stands.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The task.
        #[arg(long)]
        task: TaskId,
        /// Print the coordinator's answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The whole spec as JSON (a `TaskSpec`, as `--print-spec` writes it)
    /// instead of the flags below; a `payload_limit` of 0 is filled in.
    #[arg(long, value_name = "FILE", conflicts_with = "SpecArgs")]
    spec: Option<PathBuf>,
    #[command(flatten)]
    flags: SpecArgs,
    /// Seeds the initial weights (Model::init of the zoo).
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    /// Print the spec as JSON and exit without creating anything.
    #[arg(long)]
    print_spec: bool,
}

/// The task, flag by flag. The zoo's models train on MNIST-shaped data.
#[derive(Debug, clap::Args)]
struct SpecArgs {
    /// The model: logreg, 2nn or cnn.
    #[arg(long, default_value = "2nn")]
    model: ModelKind,
    /// Number of rounds.
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    /// Fraction C of eligible trainers sampled per round, in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    fraction: f64,
    /// Local epochs E per round.
    #[arg(long, default_value_t = 1)]
    epochs: u32,
    /// Local batch size B.
    #[arg(long, default_value_t = 10)]
    batch_size: u32,
    /// Local learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// How accepted updates are combined; `best` keeps only the top-scored one (a competition).
    #[arg(long, value_enum, default_value = "fedavg")]
    rule: RuleName,
    /// Trimmed mean: fraction cut from each end, in [0, 0.5).
    #[arg(long, default_value_t = 0.1)]
    beta: f64,
    /// Krum, Multi-Krum, Bulyan: the number of Byzantine updates to tolerate.
    #[arg(long, default_value_t = 1)]
    byzantine: u32,
    /// Multi-Krum: how many best-scored updates to average (required for multi-krum).
    #[arg(long)]
    select: Option<u32>,
    /// Scale every accepted update down to at most this L2 norm before aggregating.
    #[arg(long)]
    clip: Option<f64>,
    /// Refuse (and slash) updates whose L2 norm exceeds this.
    #[arg(long)]
    max_update_norm: Option<f64>,
    /// The reward pool in STAR, escrowed from your free balance and paid out over the rounds.
    #[arg(long, value_parser = parse_star, value_name = "STAR")]
    reward_pool: Option<u64>,
    /// Least effective stake, in STAR, a trainer needs to be sampled.
    #[arg(long, value_parser = parse_star, value_name = "STAR", default_value = "10")]
    min_trainer_stake: u64,
    /// Least effective stake, in STAR, a validator needs to be assigned work.
    #[arg(long, value_parser = parse_star, value_name = "STAR", default_value = "10")]
    min_validator_stake: u64,
    /// Seconds trainers have, from a round's opening, to submit.
    #[arg(long, default_value_t = 600)]
    training_secs: u32,
    /// Seconds validators have, from their assignment, to score.
    #[arg(long, default_value_t = 300)]
    validation_secs: u32,
}

impl SpecArgs {
    fn spec(&self) -> Result<TaskSpec> {
        let kind = self.model;
        let aggregation = AggregationSpec {
            rule: self.rule.with(self.beta, self.byzantine, self.select)?,
            norm_clip: self.clip,
            server_optimizer: None,
        };
        let reward_pool = self.reward_pool.context("--reward-pool STAR is required (or give the whole --spec FILE)")?;
        TaskSpec::builder(kind.model_spec(), kind.data_spec())
            .rounds(self.rounds)
            .fraction(self.fraction)
            .training(self.epochs, self.batch_size, self.lr)
            .aggregation(aggregation)
            .reward_pool(reward_pool)
            .min_stakes(self.min_trainer_stake, self.min_validator_stake)
            .deadlines(self.training_secs, self.validation_secs)
            .max_update_norm(self.max_update_norm)
            .build()
            .context("the task spec is invalid")
    }
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Create(args) => create(*args),
        Command::Show { client, task, json } => block_on(async {
            let info = client.connect()?.task(task).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", describe(&info));
            }
            Ok(())
        }),
    }
}

fn create(args: CreateArgs) -> Result<()> {
    let mut spec = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not a task spec (JSON)", path.display()))?
        }
        None => args.flags.spec()?,
    };
    if spec.payload_limit == 0 {
        spec.payload_limit = u64::try_from(spec.encoded_payload_len()?)?;
    }
    spec.validate().context("the task spec is invalid")?;
    // The initial model comes from this build's zoo, so the spec must name one of its models.
    let kind = starling_client::model_kind(&spec)?;
    if args.print_spec {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(());
    }
    let model = Model::init(kind, args.init_seed, &Device::flex()).to_payload()?;
    if model.len() as u64 > spec.payload_limit {
        bail!("the initial model ({} bytes) exceeds the spec's payload_limit {}", model.len(), spec.payload_limit);
    }
    let creator = args.client.identity()?;
    let create = CreateTask { spec: spec.clone(), initial_model: *model.hash(), initial_model_len: model.len() as u64 };
    block_on(async {
        let answer = args.client.connect()?.signed("task create", &creator, &create, Some(model.bytes())).await?;
        let ResponseBody::TaskCreated { task } = answer else {
            return Err(unexpected("task create", &answer));
        };
        eprintln!(
            "created task {task}: {} for {} round(s), rule {}, reward pool {} escrowed from {}",
            spec.model.name,
            spec.rounds,
            spec.aggregation.rule.name(),
            star(spec.reward_pool),
            creator.public_key()
        );
        println!("{task}");
        Ok(())
    })
}

/// A task as a few lines of text.
fn describe(info: &TaskInfo) -> String {
    let spec = &info.spec;
    let mut text = format!(
        "task       {}\ncreator    {}\nmodel      {} ({} tensors, {} data)\nrounds     {}, fraction {}, {} epoch(s) of batch {}, lr {}\n\
         rule       {}\npool       {}\nmin stake  trainer {}, validator {}\n",
        info.task,
        info.creator,
        printable(&spec.model.name),
        spec.model.tensors.len(),
        printable(&spec.data.dataset),
        spec.rounds,
        spec.fraction,
        spec.local_epochs,
        spec.batch_size,
        spec.learning_rate,
        spec.aggregation.rule.name(),
        star(spec.reward_pool),
        star(spec.min_trainer_stake),
        star(spec.min_validator_stake),
    );
    match &info.round {
        None => text += "round      not started (waiting for trainers and validators with enough stake)\n",
        Some(round) if round.task_finished => text += &format!("round      {}: task finished\n", round.round),
        Some(round) => {
            text += &format!(
                "round      {} of {}: {}, {} trainer(s) sampled, training deadline {}\nmodel hash {}\n",
                round.round,
                spec.rounds,
                round.phase,
                round.sampled_trainers.len(),
                utc(round.training_deadline_ms / 1_000),
                round.global_model
            );
        }
    }
    text
}
