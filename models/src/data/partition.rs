//! Splitting a dataset across simulated clients, every split seeded.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

use super::error::DataError;

/// Which sample indices each client holds.
pub type Partition = Vec<Vec<usize>>;

/// IID: a seeded shuffle of `0..samples` cut into `clients` parts whose
/// sizes differ by at most one.
pub fn iid(samples: usize, clients: usize, seed: u64) -> Result<Partition, DataError> {
    if clients == 0 || clients > samples {
        return Err(DataError::Partition(format!("{clients} clients for {samples} samples")));
    }
    let mut order: Vec<usize> = (0..samples).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    Ok(split_evenly(&order, clients))
}

/// The pathological non-IID split of McMahan et al. 2017 (§3): sort the
/// samples by label, cut them into `clients × shards_per_client` shards of
/// equal size (±1), and give each client `shards_per_client` shards chosen
/// at random. With MNIST's 60,000 training digits, 100 clients and 2 shards
/// each, that is the paper's 200 shards of 300, and most clients see only
/// two digits.
pub fn shards(labels: &[u8], clients: usize, shards_per_client: usize, seed: u64) -> Result<Partition, DataError> {
    let count = clients.saturating_mul(shards_per_client);
    if clients == 0 || shards_per_client == 0 || count > labels.len() {
        return Err(DataError::Partition(format!(
            "{clients} clients × {shards_per_client} shards for {} samples",
            labels.len()
        )));
    }
    let mut by_label: Vec<usize> = (0..labels.len()).collect();
    by_label.sort_by_key(|&i| (labels[i], i));
    let shards = split_evenly(&by_label, count);
    let mut ids: Vec<usize> = (0..count).collect();
    ids.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    Ok(ids.chunks(shards_per_client).map(|own| own.iter().flat_map(|&s| shards[s].iter().copied()).collect()).collect())
}

/// Label skew by a Dirichlet prior (Hsu et al. 2019, "Measuring the Effects
/// of Non-Identical Data Distribution"): for each class, draw client shares
/// `p ~ Dir(α)` and deal that class's samples out in those proportions.
/// Small `α` (0.1) gives each client a few dominant classes; large `α`
/// (100) approaches IID. A client may receive no samples at small `α`.
pub fn dirichlet(labels: &[u8], classes: usize, clients: usize, alpha: f64, seed: u64) -> Result<Partition, DataError> {
    if clients == 0 {
        return Err(DataError::Partition("zero clients".into()));
    }
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(DataError::Partition(format!("Dirichlet α must be a positive number, got {alpha}")));
    }
    let gamma = Gamma::new(alpha, 1.0).map_err(|e| DataError::Partition(format!("Dirichlet α = {alpha}: {e}")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut parts: Partition = vec![Vec::new(); clients];
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| usize::from(labels[i]) == class).collect();
        members.shuffle(&mut rng);
        // Dir(α) as normalised Gamma(α, 1) draws.
        let mut shares: Vec<f64> = (0..clients).map(|_| gamma.sample(&mut rng)).collect();
        let total: f64 = shares.iter().sum();
        if total > 0.0 {
            shares.iter_mut().for_each(|s| *s /= total);
        } else {
            shares.fill(1.0 / clients as f64);
        }
        // Cut points from cumulative shares; the last client takes the rest,
        // so every sample is dealt exactly once.
        let n = members.len();
        let mut start = 0;
        let mut cumulative = 0.0;
        for (c, share) in shares.iter().enumerate() {
            cumulative += share;
            let end = if c + 1 == clients { n } else { ((cumulative * n as f64).round() as usize).clamp(start, n) };
            parts[c].extend_from_slice(&members[start..end]);
            start = end;
        }
    }
    Ok(parts)
}

fn split_evenly(items: &[usize], parts: usize) -> Partition {
    let (base, extra) = (items.len() / parts, items.len() % parts);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let len = base + usize::from(p < extra);
        out.push(items[start..start + len].to_vec());
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Labels like MNIST's training set in size: 6,000 of each digit, in a
    /// scrambled order.
    fn labels() -> Vec<u8> {
        (0..60_000usize).map(|i| ((i * 7919) % 10) as u8).collect()
    }

    fn assert_exact_cover(p: &Partition, n: usize) {
        let mut all: Vec<usize> = p.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every sample exactly once");
    }

    #[test]
    fn iid_is_an_even_seeded_cover() {
        let p = iid(1003, 10, 7).unwrap();
        assert_exact_cover(&p, 1003);
        assert!(p.iter().all(|c| c.len() == 100 || c.len() == 101));
        assert_eq!(p, iid(1003, 10, 7).unwrap());
        assert_ne!(p, iid(1003, 10, 8).unwrap());
        assert!(iid(5, 6, 1).is_err());
        assert!(iid(5, 0, 1).is_err());
    }

    #[test]
    fn shards_reproduce_the_papers_pathological_split() {
        let labels = labels();
        let p = shards(&labels, 100, 2, 1).unwrap();
        assert_exact_cover(&p, 60_000);
        assert!(p.iter().all(|c| c.len() == 600), "2 shards of 300 each");
        for client in &p {
            let digits: BTreeSet<u8> = client.iter().map(|&i| labels[i]).collect();
            // Each shard of 300 sorted samples lies within one digit (6,000 per digit).
            assert!(digits.len() <= 2, "{digits:?}");
        }
        assert_eq!(p, shards(&labels, 100, 2, 1).unwrap());
        assert!(shards(&labels, 0, 2, 1).is_err());
        assert!(shards(&labels[..10], 6, 2, 1).is_err());
    }

    #[test]
    fn dirichlet_skews_with_small_alpha_and_evens_out_with_large() {
        let labels = labels();
        let skew = |alpha: f64| -> f64 {
            let p = dirichlet(&labels, 10, 20, alpha, 3).unwrap();
            assert_exact_cover(&p, 60_000);
            // Mean over clients of the largest class share.
            let shares: Vec<f64> = p
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let mut counts = [0usize; 10];
                    c.iter().for_each(|&i| counts[usize::from(labels[i])] += 1);
                    *counts.iter().max().unwrap() as f64 / c.len() as f64
                })
                .collect();
            shares.iter().sum::<f64>() / shares.len() as f64
        };
        assert!(skew(0.1) > 0.5, "α = 0.1: one class dominates each client");
        assert!(skew(1000.0) < 0.15, "α = 1000: close to the IID 0.1");
        assert_eq!(dirichlet(&labels, 10, 20, 0.5, 9).unwrap(), dirichlet(&labels, 10, 20, 0.5, 9).unwrap());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(dirichlet(&labels, 10, 20, bad, 1).is_err());
        }
        assert!(dirichlet(&labels, 10, 0, 1.0, 1).is_err());
    }
}
