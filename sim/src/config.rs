//! What a simulation runs.

use starling_models::train::TrainConfig;
use starling_models::zoo::ModelKind;
use starling_protocol::AggregationRule;

use super::{Attack, SimError};

/// How the training set is split across clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PartitionKind {
    /// A seeded shuffle cut into equal parts.
    Iid,
    /// The FedAvg paper's pathological non-IID split: sorted by label, cut
    /// into `clients × per_client` shards, `per_client` random shards each
    /// (the paper: 2).
    Shards {
        /// Shards per client.
        per_client: usize,
    },
    /// Label skew from a Dirichlet(α) prior per class.
    Dirichlet {
        /// Concentration α > 0; small is skewed, large is near IID.
        alpha: f64,
    },
}

impl PartitionKind {
    /// Parses `iid`, `shards`, `shards:N` or `dirichlet:ALPHA`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "iid" => Ok(Self::Iid),
            None if text == "shards" => Ok(Self::Shards { per_client: 2 }),
            Some(("shards", n)) => match n.parse() {
                Ok(per_client) if per_client > 0 => Ok(Self::Shards { per_client }),
                _ => Err(format!("`shards:{n}` needs a whole number of shards per client, at least 1")),
            },
            Some(("dirichlet", a)) => match a.parse::<f64>() {
                Ok(alpha) if alpha.is_finite() && alpha > 0.0 => Ok(Self::Dirichlet { alpha }),
                _ => Err(format!("`dirichlet:{a}` needs a positive concentration, as in `dirichlet:0.5`")),
            },
            _ => Err(format!("unknown partition `{text}`: use iid, shards[:N] or dirichlet:ALPHA")),
        }
    }

    /// The partition as [`PartitionKind::parse`] reads it.
    pub fn name(&self) -> String {
        match self {
            Self::Iid => "iid".to_owned(),
            Self::Shards { per_client } => format!("shards:{per_client}"),
            Self::Dirichlet { alpha } => format!("dirichlet:{alpha}"),
        }
    }
}

/// One simulation: data split, sampling, local training, aggregation,
/// attackers and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The model every client trains.
    pub model: ModelKind,
    /// How the training set is split.
    pub partition: PartitionKind,
    /// Number of clients `K`.
    pub clients: usize,
    /// Fraction `C` of clients sampled per round, in `(0, 1]`; each round
    /// trains `max(round(C·K), 1)` clients.
    pub fraction: f64,
    /// Local training settings; `seed` is replaced per client and round
    /// (derived from [`SimConfig::seed`]).
    pub train: TrainConfig,
    /// Most rounds to run, at least 1.
    pub rounds: u32,
    /// Stop after the first round whose test accuracy reaches this, in `(0, 1]`.
    pub target_accuracy: Option<f32>,
    /// How updates are combined, as a task names it. `Best` is refused: it
    /// keeps the best-scored update, and a simulation has no validators to
    /// score them.
    pub rule: AggregationRule,
    /// Clip every update to this L2 norm first.
    pub clip: Option<f64>,
    /// How many clients are malicious (chosen by the seed), `≤ clients`.
    pub malicious: usize,
    /// What the malicious clients do when sampled.
    pub attack: Attack,
    /// Seeds everything: initial weights, the split, sampling, batch order,
    /// attacker choice and attack noise.
    pub seed: u64,
    /// Batch size for evaluating the global model.
    pub eval_batch: usize,
}

impl SimConfig {
    /// Clients trained per round: `max(round(C·K), 1)`.
    pub fn per_round(&self) -> usize {
        ((self.fraction * self.clients as f64).round() as usize).clamp(1, self.clients.max(1))
    }

    /// Checks every field; a config that passes runs (data permitting).
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &'static str, reason: String| Err(SimError::Config { field, reason });
        if self.clients == 0 {
            return bad("clients", "must be at least 1".into());
        }
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return bad("fraction", format!("must be in (0, 1], got {}", self.fraction));
        }
        if self.rounds == 0 {
            return bad("rounds", "must be at least 1".into());
        }
        if let Some(target) = self.target_accuracy
            && !(target > 0.0 && target <= 1.0)
        {
            return bad("target_accuracy", format!("must be in (0, 1], got {target}"));
        }
        if self.malicious > self.clients {
            return bad("malicious", format!("{} malicious of {} clients", self.malicious, self.clients));
        }
        if let Some(clip) = self.clip
            && !(clip.is_finite() && clip > 0.0)
        {
            return bad("clip", format!("must be finite and positive, got {clip}"));
        }
        if self.rule == AggregationRule::Best {
            return bad(
                "rule",
                "best keeps the best-scored update, and a simulation has no validators to score".into(),
            );
        }
        if (self.per_round() as u64) < self.rule.min_clients() {
            return bad(
                "rule",
                format!(
                    "{} needs at least {} updates per round but only {} clients are sampled",
                    self.rule.name(),
                    self.rule.min_clients(),
                    self.per_round()
                ),
            );
        }
        if self.eval_batch == 0 {
            return bad("eval_batch", "must be at least 1".into());
        }
        self.train.validate().map_err(|source| SimError::Config { field: "train", reason: source.to_string() })
    }
}
