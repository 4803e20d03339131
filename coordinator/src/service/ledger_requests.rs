//! The signed requests that move money: stake, delegate, unstake,
//! undelegate, set a commission, transfer, issue. Each becomes one ledger
//! [`Operation`], applied under the request's idempotency key
//! (`request:{signer}:{nonce}`), so a request that reaches the ledger twice
//! is applied once.

use starling_protocol::messages::SignedRequest;
use starling_protocol::{ErrorCode, Nonce, PublicKey, ResponseBody, Role, WireError};
use starling_staking::{Amount, BondId, LedgerStore, Operation};

use super::Coordinator;
use super::wire_error::{internal, ledger_error, refuse};
use crate::artifacts::ArtifactStore;
use crate::store::CoordinatorStore;

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Carries out a verified ledger request of `signer`'s. The task requests
    /// (create, join, submit, score) are not ledger requests and are refused
    /// here as a bug of the caller's.
    pub(crate) async fn ledger_request(
        &self,
        signer: PublicKey,
        nonce: Nonce,
        message: SignedRequest,
    ) -> Result<ResponseBody, WireError> {
        let key = format!("request:{signer}:{nonce}");
        let ledger = |op: Operation| async move {
            self.inner.ledger.apply(&key, &op, self.now().to_ledger()).await.map_err(|e| ledger_error(&e))
        };
        let amount = Amount::from_micro;
        match message {
            SignedRequest::Stake(stake) => {
                let op = Operation::Stake {
                    owner: signer,
                    role: stake.role,
                    amount: amount(stake.amount),
                    lock_days: stake.lock_days,
                };
                bonded(ledger(op).await?)
            }
            SignedRequest::Delegate(delegate) => {
                let op = Operation::Delegate {
                    delegator: signer,
                    node: delegate.node,
                    role: delegate.role,
                    amount: amount(delegate.amount),
                    lock_days: delegate.lock_days,
                };
                bonded(ledger(op).await?)
            }
            SignedRequest::Unstake(unstake) => {
                let bond = self.owned_bond(signer, unstake.bond).await?;
                ledger(Operation::Unstake { owner: signer, bond: BondId(unstake.bond) }).await?;
                Ok(self.unbonded(bond))
            }
            SignedRequest::Undelegate(undelegate) => {
                let bond = self.owned_bond(signer, undelegate.bond).await?;
                ledger(Operation::Undelegate { delegator: signer, bond: BondId(undelegate.bond) }).await?;
                Ok(self.unbonded(bond))
            }
            SignedRequest::SetCommission(commission) => {
                ledger(Operation::SetCommission { node: signer, commission_ppm: commission.ppm }).await?;
                Ok(ResponseBody::Ack)
            }
            SignedRequest::Transfer(transfer) => {
                ledger(Operation::Transfer { from: signer, to: transfer.to, amount: amount(transfer.amount) }).await?;
                Ok(ResponseBody::Ack)
            }
            SignedRequest::Issue(issue) => {
                if signer != self.inner.config.admin {
                    return Err(refuse(ErrorCode::Unauthorized, "only the coordinator's admin key may issue tokens"));
                }
                ledger(Operation::Issue { by: signer, to: issue.to, amount: amount(issue.amount) }).await?;
                Ok(ResponseBody::Ack)
            }
            SignedRequest::CreateTask(_)
            | SignedRequest::JoinTask(_)
            | SignedRequest::SubmitUpdate(_)
            | SignedRequest::SubmitScore(_)
            | SignedRequest::GetAssignments(_)
            | SignedRequest::FetchUpdate(_) => Err(internal("ledger requests", &"a task request was routed here")),
        }
    }

    /// `key`'s effective stake as `role`: its own bonds and those delegated
    /// to it, lock multipliers applied.
    pub(crate) async fn effective_stake(
        &self,
        key: &PublicKey,
        role: Role,
    ) -> Result<u128, starling_staking::StoreError> {
        let bonds = self.inner.ledger.bonds_of_node(key, role).await?;
        Ok(bonds.iter().map(starling_staking::Bond::effective).sum())
    }

    async fn owned_bond(&self, signer: PublicKey, bond: u64) -> Result<starling_staking::Bond, WireError> {
        match self.inner.ledger.bond(BondId(bond)).await.map_err(|e| ledger_error(&e))? {
            Some(found) if found.owner == signer => Ok(found),
            Some(_) => Err(refuse(ErrorCode::Unauthorized, format!("bond {bond} belongs to another key"))),
            None => Err(refuse(ErrorCode::UnknownBond, format!("no bond {bond}"))),
        }
    }

    fn unbonded(&self, bond: starling_staking::Bond) -> ResponseBody {
        let fee = self.inner.config.params.unstake_fee.of(bond.amount).micro();
        ResponseBody::Unbonded { bond: bond.id.0, returned: bond.amount.micro() - fee, fee }
    }
}

fn bonded(outcome: starling_staking::Outcome) -> Result<ResponseBody, WireError> {
    match outcome.bond {
        Some(bond) => Ok(ResponseBody::Bonded { bond: bond.0 }),
        None => Err(internal("ledger", &"a bonding operation made no bond")),
    }
}
