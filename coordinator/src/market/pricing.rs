//! What an inference call costs and who gets the fee: pure arithmetic on
//! integers (µSTAR), no I/O.
//!
//! The architecture's rule: a call of `n` inputs costs
//! `(base + per_item · n) · multiplier`, bumped ×1.005 for every request
//! already queued; stakers get a free daily quota in proportion to their
//! stake; fees are shared among the model's creator, the task's trainers (by
//! reward earned on it), its validators (likewise) and the treasury.

use starling_protocol::PublicKey;
use starling_staking::{Amount, pro_rata};

/// The marketplace's prices and shares. Every number is a network parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketParams {
    /// µSTAR per call.
    pub base: u64,
    /// µSTAR per input.
    pub per_item: u64,
    /// Free inputs per day for each whole STAR an identity has bonded (own
    /// stake and delegations made, every role).
    pub free_items_per_star: u64,
    /// Inputs one call may carry.
    pub max_inputs: usize,
    /// Requests that may wait for the model at once; more are refused busy.
    pub max_queued: usize,
    /// Loaded models kept in memory.
    pub cached_models: usize,
    /// Parts per million of each fee to the model's creator.
    pub creator_ppm: u32,
    /// Parts per million to the task's trainers, by reward earned.
    pub trainers_ppm: u32,
    /// Parts per million to the task's validators, by reward earned. The
    /// rest (and every rounding remainder) goes to the treasury.
    pub validators_ppm: u32,
}

impl Default for MarketParams {
    /// 0.001 STAR per call plus 0.0001 STAR per input; 10 free inputs a day
    /// per STAR bonded; shares 20% creator, 50% trainers, 20% validators,
    /// 10% treasury.
    fn default() -> Self {
        Self {
            base: 1_000,
            per_item: 100,
            free_items_per_star: 10,
            max_inputs: 256,
            max_queued: 32,
            cached_models: 8,
            creator_ppm: 200_000,
            trainers_ppm: 500_000,
            validators_ppm: 200_000,
        }
    }
}

impl MarketParams {
    /// The fee for `items` paid inputs with `queued` requests ahead:
    /// `base + per_item · items`, times 1.005 per queued request, rounded up
    /// (the bump is never rounded away). Zero when nothing is paid.
    pub fn fee(&self, items: u64, queued: usize) -> u64 {
        if items == 0 {
            return 0;
        }
        /// The bump is applied in units of 10⁻⁹ µSTAR, so rounding each
        /// step up adds at most a µSTAR in all.
        const SCALE: u128 = 1_000_000_000;
        let raw = u128::from(self.base) + u128::from(self.per_item) * u128::from(items);
        if raw > u128::from(u64::MAX) {
            return u64::MAX;
        }
        let mut fee = raw * SCALE;
        for _ in 0..queued {
            if fee > u128::MAX / 1_005 {
                return u64::MAX;
            }
            fee = (fee * 1_005).div_ceil(1_000);
        }
        u64::try_from(fee.div_ceil(SCALE)).unwrap_or(u64::MAX)
    }

    /// Free inputs a day for an identity with `bonded` µSTAR bonded.
    pub fn daily_quota(&self, bonded: Amount) -> u64 {
        (bonded.micro() / 1_000_000).saturating_mul(self.free_items_per_star)
    }

    /// Splits `fee` among the creator, the trainers and validators (each by
    /// `earned`), and the treasury, which also takes every remainder and
    /// the share of a group that earned nothing. The shares sum with the
    /// treasury's part to exactly `fee`; a key in several groups gets one
    /// summed share.
    pub fn shares(
        &self,
        fee: Amount,
        creator: PublicKey,
        trainers: &[(PublicKey, u64)],
        validators: &[(PublicKey, u64)],
    ) -> (Vec<(PublicKey, Amount)>, Amount) {
        let part = |ppm: u32| {
            Amount::from_micro(u64::try_from(u128::from(fee.micro()) * u128::from(ppm) / 1_000_000).unwrap_or(0))
        };
        let mut paid: Vec<(PublicKey, Amount)> = vec![(creator, part(self.creator_ppm))];
        for (group, ppm) in [(trainers, self.trainers_ppm), (validators, self.validators_ppm)] {
            let weights: Vec<u128> = group.iter().map(|(_, earned)| u128::from(*earned)).collect();
            if weights.iter().all(|&w| w == 0) {
                continue;
            }
            let (amounts, _) = pro_rata(part(ppm), &weights);
            paid.extend(group.iter().map(|(key, _)| *key).zip(amounts));
        }
        let mut merged: Vec<(PublicKey, Amount)> = Vec::with_capacity(paid.len());
        for (key, amount) in paid {
            match merged.iter_mut().find(|(k, _)| *k == key) {
                Some((_, total)) => *total = Amount::from_micro(total.micro().saturating_add(amount.micro())),
                None => merged.push((key, amount)),
            }
        }
        merged.retain(|(_, amount)| !amount.is_zero());
        let given: u64 = merged.iter().map(|(_, amount)| amount.micro()).sum();
        (merged, Amount::from_micro(fee.micro() - given))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn the_fee_is_base_plus_per_item_bumped_per_queued_request() {
        let params = MarketParams::default();
        assert_eq!(params.fee(0, 5), 0, "a free call costs nothing whatever the queue");
        assert_eq!(params.fee(1, 0), 1_100);
        assert_eq!(params.fee(10, 0), 2_000);
        // ×1.005 once: 2_010; twice: 2_020.05, rounded up.
        assert_eq!(params.fee(10, 1), 2_010);
        assert_eq!(params.fee(10, 2), 2_021);
        let bumped = params.fee(10, 32) as f64;
        let exact = 2_000.0 * 1.005f64.powi(32);
        assert!(bumped >= exact && bumped <= exact + 1.0, "{bumped} vs {exact}");
        let huge = MarketParams { base: u64::MAX, per_item: u64::MAX, ..params };
        assert_eq!(huge.fee(u64::MAX, 3), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn the_daily_quota_follows_whole_stars_bonded() {
        let params = MarketParams::default();
        assert_eq!(params.daily_quota(Amount::from_micro(999_999)), 0);
        assert_eq!(params.daily_quota(Amount::from_micro(25_500_000)), 250);
    }

    #[test]
    fn shares_split_the_whole_fee_by_role_and_earnings() {
        let params = MarketParams::default();
        let (shares, treasury) =
            params.shares(Amount::from_micro(10_001), key(1), &[(key(2), 300), (key(3), 100)], &[(key(4), 50)]);
        let get = |k| shares.iter().find(|(key, _)| *key == k).map(|(_, a)| a.micro());
        assert_eq!(get(key(1)), Some(2_000));
        // 5_000 by 3:1.
        assert_eq!(get(key(2)), Some(3_750));
        assert_eq!(get(key(3)), Some(1_250));
        assert_eq!(get(key(4)), Some(2_000));
        let total: u64 = shares.iter().map(|(_, a)| a.micro()).sum::<u64>() + treasury.micro();
        assert_eq!(total, 10_001, "nothing created or lost");
        assert_eq!(treasury.micro(), 1_001);
    }

    #[test]
    fn a_group_without_earnings_leaves_its_share_to_the_treasury_and_keys_are_merged() {
        let params = MarketParams::default();
        // The creator also trained: one summed share.
        let (shares, treasury) = params.shares(Amount::from_micro(1_000), key(1), &[(key(1), 7)], &[(key(4), 0)]);
        assert_eq!(shares, vec![(key(1), Amount::from_micro(700))]);
        assert_eq!(treasury.micro(), 300);
        let (shares, treasury) = params.shares(Amount::from_micro(3), key(1), &[], &[]);
        assert!(shares.is_empty(), "0.6 µSTAR rounds to nothing: {shares:?}");
        assert_eq!(treasury.micro(), 3);
    }
}
