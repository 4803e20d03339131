//! Aggregation in the service: the accepted updates of a round, combined
//! with the task's rule into the next global model, which is stored under
//! its hash (so doing it again after a crash changes nothing).

use starling_aggregation::{FedAvg, Inputs, Layout, Rule, TaskRule, TensorInfo, aggregate_into};
use starling_protocol::payload::{PayloadError, decode_view};
use starling_protocol::{AggregationSpec, ContentHash, TaskSpec, TensorRef, TensorSpec, UpdatePayload};
use starling_staking::LedgerStore;
use thiserror::Error;

use super::Coordinator;
use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::round::{AggregationInput, AggregationOutcome};
use crate::store::CoordinatorStore;

/// Why a round produced no new global model. The round still settles; the
/// global model stays as it was, and the machine records this error's text.
#[derive(Debug, Error)]
pub(crate) enum AggregateError {
    /// The task asks for a server optimizer, whose moments would have to
    /// persist across rounds.
    #[error("server optimizers are not supported by the coordinator yet")]
    ServerOptimizer,
    /// A stored payload (the base model or an update) could not be read.
    #[error("payload {hash}: {source}")]
    Read {
        /// The payload.
        hash: ContentHash,
        /// What the store said.
        #[source]
        source: ArtifactError,
    },
    /// A stored payload does not decode to the task's tensors.
    #[error("payload {hash}: {source}")]
    Decode {
        /// The payload.
        hash: ContentHash,
        /// What the decoder said.
        #[source]
        source: PayloadError,
    },
    /// The rule refused its inputs (too few updates, bad parameters).
    #[error(transparent)]
    Rule(#[from] starling_aggregation::AggregationError),
    /// The new model holds a value that is not finite.
    #[error("the new global model has a non-finite value at flat index {index}")]
    NonFinite {
        /// Where, in layout order.
        index: usize,
    },
    /// The new model could not be encoded.
    #[error("encoding the new global model: {0}")]
    Encode(#[source] PayloadError),
    /// The new model could not be stored.
    #[error("storing the new global model: {0}")]
    Store(#[source] ArtifactError),
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Combines the accepted updates with the task's rule ([`TaskRule`]: the
    /// one mapping of a task's rule onto the aggregation crate's) into a new
    /// global model and stores it. FedAvg (and `best`, FedAvg over the top
    /// update) streams the updates one at a time into an accumulator, in
    /// memory O(model); the coordinate-wise and distance rules need all
    /// updates at once.
    pub(crate) async fn aggregate(
        &self,
        task: &TaskSpec,
        base_model: ContentHash,
        spec: AggregationSpec,
        updates: &[AggregationInput],
    ) -> AggregationOutcome {
        match self.try_aggregate(task, base_model, spec, updates).await {
            Ok(model) => AggregationOutcome::Succeeded { model },
            Err(error) => AggregationOutcome::Failed { reason: error.to_string() },
        }
    }

    async fn try_aggregate(
        &self,
        task: &TaskSpec,
        base_model: ContentHash,
        spec: AggregationSpec,
        updates: &[AggregationInput],
    ) -> Result<ContentHash, AggregateError> {
        if spec.server_optimizer.is_some() {
            return Err(AggregateError::ServerOptimizer);
        }
        let tensors = &task.model.tensors;
        let limit = task.payload_limit_bytes();
        let layout = Layout::new(tensors.iter().map(|t| TensorInfo::new(t.name.clone(), t.shape.clone())).collect())?;
        let base = self.load_flat(base_model, tensors, limit).await?;
        let plan = TaskRule::new(spec.rule)?;
        let chosen = plan.chosen(updates);
        let delta = match plan.rule {
            Rule::FedAvg => {
                let mut sum = FedAvg::new(&layout);
                if let Some(clip) = spec.norm_clip {
                    sum = sum.with_clip(clip)?;
                }
                for (i, update) in chosen.iter().enumerate() {
                    let flat = self.load_flat(update.payload, tensors, limit).await?;
                    let view = layout.view_flat(i, &flat)?;
                    sum.add(i, &view, update.weight as f64)?;
                }
                sum.finish()?
            }
            rule => {
                let mut flats = Vec::with_capacity(chosen.len());
                for update in chosen {
                    flats.push(self.load_flat(update.payload, tensors, limit).await?);
                }
                let views = flats
                    .iter()
                    .enumerate()
                    .map(|(i, flat)| layout.view_flat(i, flat))
                    .collect::<Result<Vec<_>, _>>()?;
                let weights = chosen.iter().map(|u| u.weight as f64).collect();
                let mut inputs = Inputs::new(&layout, views, weights)?;
                if let Some(clip) = spec.norm_clip {
                    inputs = inputs.clip(clip)?;
                }
                tokio::task::block_in_place(|| aggregate_into(&rule, &inputs, Vec::new()))?.model
            }
        };
        let mut model = base;
        for (w, d) in model.iter_mut().zip(&delta) {
            *w += d;
        }
        if let Some(index) = model.iter().position(|v| !v.is_finite()) {
            return Err(AggregateError::NonFinite { index });
        }
        let refs: Vec<TensorRef<'_>> =
            layout.split(&model).map(|(info, values)| TensorRef::new(&info.name, &info.shape, values)).collect();
        let encoded = UpdatePayload::encode(&refs).map_err(AggregateError::Encode)?;
        let hash = *encoded.hash();
        self.inner.artifacts.put(hash, encoded.bytes()).await.map_err(AggregateError::Store)?;
        Ok(hash)
    }

    /// A stored payload as one flat buffer in layout order.
    async fn load_flat(
        &self,
        hash: ContentHash,
        tensors: &[TensorSpec],
        limit: usize,
    ) -> Result<Vec<f32>, AggregateError> {
        let bytes = self.inner.artifacts.get(hash).await.map_err(|source| AggregateError::Read { hash, source })?;
        let views = decode_view(&bytes, tensors, limit).map_err(|source| AggregateError::Decode { hash, source })?;
        let mut flat = Vec::with_capacity(views.iter().map(|v| v.len()).sum());
        for view in &views {
            flat.extend(view.values());
        }
        Ok(flat)
    }
}
