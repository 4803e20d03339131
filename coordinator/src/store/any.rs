//! A store chosen at run time from its URL.

use starling_protocol::{ContentHash, PublicKey, RoundNumber, TaskId};
use starling_staking::Backend;

use super::records::{
    Join, Lease, NewTask, Recorded, RoundRecord, ScoreRecord, SubmissionRecord, TaskRecord, TaskState,
};
use super::{
    CoordinatorStore, MarketModel, MarketStore, MarketVersion, Page, PageRequest, PostgresCoordinatorStore, Promotion,
    SqliteCoordinatorStore, StoreError, VerdictStore,
};
use crate::round::{RoundVerdicts, UnixMillis, ValidatorVerdict};

/// Either backend, picked by [`open_any`] from a configured URL.
#[derive(Debug, Clone)]
pub enum AnyCoordinatorStore {
    /// SQLite.
    Sqlite(SqliteCoordinatorStore),
    /// PostgreSQL.
    Postgres(PostgresCoordinatorStore),
}

/// Opens the store `url` names ([`Backend::of`], as the ledger reads it):
/// `sqlite:…` with [`SqliteCoordinatorStore::open`], `postgres://…` or
/// `postgresql://…` with [`PostgresCoordinatorStore::connect`]; any other
/// scheme is [`StoreError::UnsupportedUrl`].
pub async fn open_any(url: &str) -> Result<AnyCoordinatorStore, StoreError> {
    match Backend::of(url).map_err(|e| StoreError::UnsupportedUrl(e.0))? {
        Backend::Sqlite => Ok(AnyCoordinatorStore::Sqlite(SqliteCoordinatorStore::open(url).await?)),
        Backend::Postgres => Ok(AnyCoordinatorStore::Postgres(PostgresCoordinatorStore::connect(url).await?)),
    }
}

/// Forwards a call to whichever store is inside.
macro_rules! forward {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyCoordinatorStore::Sqlite(store) => store.$method($($arg),*).await,
            AnyCoordinatorStore::Postgres(store) => store.$method($($arg),*).await,
        }
    };
}

impl CoordinatorStore for AnyCoordinatorStore {
    async fn reserve_task(&self, creator: &PublicKey, at: UnixMillis) -> Result<TaskId, StoreError> {
        forward!(self.reserve_task(creator, at))
    }

    async fn create_task(&self, id: TaskId, task: &NewTask) -> Result<(), StoreError> {
        forward!(self.create_task(id, task))
    }

    async fn is_public_model(&self, hash: ContentHash) -> Result<bool, StoreError> {
        forward!(self.is_public_model(hash))
    }

    async fn abandon_reservation(&self, id: TaskId) -> Result<(), StoreError> {
        forward!(self.abandon_reservation(id))
    }

    async fn release_reservation(&self, id: TaskId) -> Result<(), StoreError> {
        forward!(self.release_reservation(id))
    }

    async fn reservations(&self, before: UnixMillis) -> Result<Vec<(TaskId, PublicKey)>, StoreError> {
        forward!(self.reservations(before))
    }

    async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
        forward!(self.task(id))
    }

    async fn tasks(&self, page: PageRequest) -> Result<Page<TaskRecord>, StoreError> {
        forward!(self.tasks(page))
    }

    async fn open_tasks_of(&self, creator: &PublicKey) -> Result<u64, StoreError> {
        forward!(self.open_tasks_of(creator))
    }

    async fn load_state(&self, task: TaskId) -> Result<TaskState, StoreError> {
        forward!(self.load_state(task))
    }

    async fn save_state(
        &self,
        task: TaskId,
        expected_version: u64,
        state: &[u8],
        finished: bool,
    ) -> Result<u64, StoreError> {
        forward!(self.save_state(task, expected_version, state, finished))
    }

    async fn unfinished_tasks(&self) -> Result<Vec<TaskId>, StoreError> {
        forward!(self.unfinished_tasks())
    }

    async fn record_join(&self, join: &Join) -> Result<Recorded, StoreError> {
        forward!(self.record_join(join))
    }

    async fn joins(&self, task: TaskId) -> Result<Vec<Join>, StoreError> {
        forward!(self.joins(task))
    }

    async fn record_submission(&self, submission: &SubmissionRecord) -> Result<Recorded, StoreError> {
        forward!(self.record_submission(submission))
    }

    async fn submissions(&self, task: TaskId, round: RoundNumber) -> Result<Vec<SubmissionRecord>, StoreError> {
        forward!(self.submissions(task, round))
    }

    async fn submission_of(
        &self,
        task: TaskId,
        round: RoundNumber,
        trainer: &PublicKey,
    ) -> Result<Option<SubmissionRecord>, StoreError> {
        forward!(self.submission_of(task, round, trainer))
    }

    async fn record_score(&self, score: &ScoreRecord) -> Result<Recorded, StoreError> {
        forward!(self.record_score(score))
    }

    async fn scores(&self, task: TaskId, round: RoundNumber) -> Result<Vec<ScoreRecord>, StoreError> {
        forward!(self.scores(task, round))
    }

    async fn record_round(&self, round: &RoundRecord) -> Result<Recorded, StoreError> {
        forward!(self.record_round(round))
    }

    async fn rounds(&self, task: TaskId, page: PageRequest) -> Result<Page<RoundRecord>, StoreError> {
        forward!(self.rounds(task, page))
    }

    async fn acquire_lease(
        &self,
        task: TaskId,
        owner: &str,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        forward!(self.acquire_lease(task, owner, until, now))
    }

    async fn renew_lease(
        &self,
        task: TaskId,
        owner: &str,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        forward!(self.renew_lease(task, owner, until, now))
    }

    async fn release_lease(&self, task: TaskId, owner: &str) -> Result<bool, StoreError> {
        forward!(self.release_lease(task, owner))
    }

    async fn lease(&self, task: TaskId) -> Result<Option<Lease>, StoreError> {
        forward!(self.lease(task))
    }
}

impl MarketStore for AnyCoordinatorStore {
    async fn promote(&self, promotion: &Promotion) -> Result<MarketVersion, StoreError> {
        forward!(self.promote(promotion))
    }

    async fn market_models(&self, page: PageRequest) -> Result<Page<(MarketModel, MarketVersion)>, StoreError> {
        forward!(self.market_models(page))
    }

    async fn market_model(&self, id: u64) -> Result<Option<(MarketModel, Vec<MarketVersion>)>, StoreError> {
        forward!(self.market_model(id))
    }

    async fn finished_unpromoted(&self) -> Result<Vec<TaskId>, StoreError> {
        forward!(self.finished_unpromoted())
    }

    async fn free_items_used(&self, caller: &PublicKey, day: u64) -> Result<u64, StoreError> {
        forward!(self.free_items_used(caller, day))
    }

    async fn set_free_items_used(
        &self,
        caller: &PublicKey,
        day: u64,
        expected: u64,
        new: u64,
    ) -> Result<bool, StoreError> {
        forward!(self.set_free_items_used(caller, day, expected, new))
    }
}

impl VerdictStore for AnyCoordinatorStore {
    async fn record_verdicts(&self, verdicts: &RoundVerdicts) -> Result<Recorded, StoreError> {
        forward!(self.record_verdicts(verdicts))
    }

    async fn round_verdicts(&self, task: TaskId, round: RoundNumber) -> Result<Option<RoundVerdicts>, StoreError> {
        forward!(self.round_verdicts(task, round))
    }

    async fn validator_verdicts(&self, task: TaskId) -> Result<Vec<(RoundNumber, ValidatorVerdict)>, StoreError> {
        forward!(self.validator_verdicts(task))
    }
}
