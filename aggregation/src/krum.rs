//! Distance-based robust rules: Krum, Multi-Krum and Bulyan.

use rayon::prelude::*;

use crate::coordinate;
use crate::error::{AggregationError, Result};
use crate::fedavg;
use crate::inputs::{BadValue, Inputs};
use crate::kernels;

/// Coordinates per parallel job when computing distances.
const JOB: usize = 1 << 15;

/// Target scratch size in `f32`s for one block of all clients (256 KiB:
/// stays in L2 while every pair of rows is compared).
const BLOCK_VALUES: usize = 64 * 1024;

/// What a selection rule chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The aggregate, flat in layout order.
    pub model: Vec<f32>,
    /// Indices of the updates it is built from, best first.
    pub selected: Vec<usize>,
    /// Each update's Krum score (sum of squared distances to its nearest
    /// neighbours; lower is more central).
    pub scores: Vec<f64>,
}

/// Squared L2 distances between every pair of updates (after clipping),
/// as a symmetric `n × n` row-major matrix with a zero diagonal.
///
/// Computed block by block over the coordinates: each block of all `n`
/// updates is copied once into a scratch buffer that stays in cache while
/// all `n(n−1)/2` pairs are compared; blocks run in parallel.
pub fn pairwise_sq_distances(inputs: &Inputs<'_>) -> Result<Vec<f64>> {
    let n = inputs.len();
    let d = inputs.layout().numel();
    let width = (BLOCK_VALUES / n.max(1)).clamp(16, 4096) / 16 * 16;
    let jobs = d.div_ceil(JOB);
    let (mut dist, bad) = (0..jobs)
        .into_par_iter()
        .fold(
            || (vec![0.0f64; n * n], vec![0.0f32; n * width], None::<BadValue>),
            |(mut dist, mut scratch, mut bad), job| {
                let end = ((job + 1) * JOB).min(d);
                let mut start = job * JOB;
                while start < end {
                    let w = width.min(end - start);
                    let rows = &mut scratch[..n * w];
                    let mut found = false;
                    for k in 0..n {
                        found |= coordinate::gather(inputs, k, start, &mut rows[k * w..(k + 1) * w]).is_some();
                    }
                    if found {
                        // The distances are discarded: report the job's first bad value.
                        let all: Vec<usize> = (0..n).collect();
                        let job_bad = inputs.first_non_finite_among(&all, job * JOB, end - job * JOB);
                        bad = bad.into_iter().chain(job_bad).min();
                        break;
                    }
                    kernels::pair_sq_dists(rows, n, w, &mut dist);
                    start += w;
                }
                (dist, scratch, bad)
            },
        )
        .map(|(dist, _, bad)| (dist, bad))
        .reduce(
            || (vec![0.0f64; n * n], None),
            |(mut a, bad_a), (b, bad_b)| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                (a, bad_a.into_iter().chain(bad_b).min())
            },
        );
    if let Some(bad) = bad {
        return Err(inputs.non_finite_error(bad));
    }
    for i in 0..n {
        for j in 0..i {
            dist[i * n + j] = dist[j * n + i];
        }
    }
    Ok(dist)
}

/// Krum scores over the updates in `pool` (Blanchard et al. 2017, "Machine
/// Learning with Adversaries: Byzantine Tolerant Gradient Descent"): the sum
/// of squared distances from each update to its `|pool| − f − 2` nearest
/// others in the pool (at least one, as in Flower, so Bulyan's shrinking
/// pools stay defined).
fn scores(dist: &[f64], n: usize, pool: &[usize], f: usize) -> Vec<(usize, f64)> {
    let nearest = pool.len().saturating_sub(f + 2).max(1);
    pool.iter()
        .map(|&i| {
            let mut ds: Vec<f64> = pool.iter().filter(|&&j| j != i).map(|&j| dist[i * n + j]).collect();
            let k = nearest.min(ds.len());
            let score = if k == 0 {
                0.0
            } else {
                ds.select_nth_unstable_by(k - 1, f64::total_cmp);
                ds[..k].iter().sum()
            };
            (i, score)
        })
        .collect()
}

/// Pool indices ordered by score, best (lowest) first; ties go to the lower index.
fn ranked(mut scored: Vec<(usize, f64)>) -> Vec<usize> {
    scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    scored.into_iter().map(|(i, _)| i).collect()
}

fn check_krum(rule: &'static str, n: usize, f: usize) -> Result<()> {
    // Krum's guarantee needs n > 2f + 2.
    let needed = 2 * f + 3;
    if n < needed {
        return Err(AggregationError::TooFewClients { rule, needed, got: n });
    }
    Ok(())
}

fn all_scores(dist: &[f64], n: usize, f: usize) -> Vec<f64> {
    let pool: Vec<usize> = (0..n).collect();
    scores(dist, n, &pool, f).into_iter().map(|(_, s)| s).collect()
}

/// Krum: the single update with the lowest score, tolerating `f` Byzantine
/// updates among `n > 2f + 2`. Unweighted; the result is that update
/// (clipped if clipping was asked for).
pub fn krum(inputs: &Inputs<'_>, f: usize) -> Result<Selection> {
    krum_into(inputs, f, Vec::new())
}

pub(crate) fn krum_into(inputs: &Inputs<'_>, f: usize, out: Vec<f32>) -> Result<Selection> {
    let n = inputs.len();
    check_krum("krum", n, f)?;
    let dist = pairwise_sq_distances(inputs)?;
    let scores = all_scores(&dist, n, f);
    let best = ranked(scores.iter().copied().enumerate().collect())[0];
    let mut model = kernels::reuse(out, inputs.layout().numel());
    let chunk = 1 << 16;
    // Checked already by the distance pass.
    model.par_chunks_mut(chunk).enumerate().for_each(|(c, out)| {
        coordinate::gather(inputs, best, c * chunk, out);
    });
    Ok(Selection { model, selected: vec![best], scores })
}

/// Multi-Krum (Blanchard et al. 2017, §5): the weighted average (by sample
/// count, as FedAvg) of the `m` updates with the lowest Krum scores.
/// `m = 1` is Krum; `m = n` is FedAvg.
pub fn multi_krum(inputs: &Inputs<'_>, f: usize, m: usize) -> Result<Selection> {
    multi_krum_into(inputs, f, m, Vec::new())
}

pub(crate) fn multi_krum_into(inputs: &Inputs<'_>, f: usize, m: usize, out: Vec<f32>) -> Result<Selection> {
    let n = inputs.len();
    check_krum("multi-krum", n, f)?;
    if m == 0 || m > n {
        return Err(AggregationError::InvalidParameter {
            name: "select",
            reason: format!("must be between 1 and the number of updates ({n}), got {m}"),
        });
    }
    let dist = pairwise_sq_distances(inputs)?;
    let scores = all_scores(&dist, n, f);
    let selected: Vec<usize> = ranked(scores.iter().copied().enumerate().collect()).into_iter().take(m).collect();
    let model = fedavg::weighted_mean(inputs, &selected, out)?;
    Ok(Selection { model, selected, scores })
}

/// Bulyan (El Mhamdi et al. 2018, "The Hidden Vulnerability of Distributed
/// Learning in Byzantium"), for `f` Byzantine updates among `n ≥ 4f + 3`:
/// pick `θ = n − 2f` updates by repeatedly taking the Krum winner of those
/// left, then per coordinate average the `β = θ − 2f` selected values
/// closest to the coordinate's median. Unweighted.
pub fn bulyan(inputs: &Inputs<'_>, f: usize) -> Result<Selection> {
    bulyan_into(inputs, f, Vec::new())
}

pub(crate) fn bulyan_into(inputs: &Inputs<'_>, f: usize, out: Vec<f32>) -> Result<Selection> {
    let n = inputs.len();
    let needed = 4 * f + 3;
    if n < needed {
        return Err(AggregationError::TooFewClients { rule: "bulyan", needed, got: n });
    }
    let dist = pairwise_sq_distances(inputs)?;
    let theta = n - 2 * f;
    let mut pool: Vec<usize> = (0..n).collect();
    let mut selected = Vec::with_capacity(theta);
    while selected.len() < theta {
        let best = ranked(scores(&dist, n, &pool, f))[0];
        pool.retain(|&i| i != best);
        selected.push(best);
    }
    let model = coordinate::closest_to_median_mean(inputs, &selected, theta - 2 * f, out)?;
    Ok(Selection { model, selected, scores: all_scores(&dist, n, f) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Layout, TensorInfo};

    fn inputs<'a>(layout: &'a Layout, rows: &'a [Vec<f32>], weights: Vec<f64>) -> Inputs<'a> {
        let views = rows.iter().enumerate().map(|(i, r)| layout.view_flat(i, r).unwrap()).collect();
        Inputs::new(layout, views, weights).unwrap()
    }

    fn line(points: &[f32]) -> (Layout, Vec<Vec<f32>>) {
        let layout = Layout::new(vec![TensorInfo::new("x", [1]), TensorInfo::new("y", [1])]).unwrap();
        (layout, points.iter().map(|&p| vec![p, 0.0]).collect())
    }

    #[test]
    fn distances_by_hand() {
        let layout = Layout::new(vec![TensorInfo::new("v", [2])]).unwrap();
        let rows = vec![vec![0.0, 0.0], vec![3.0, 4.0], vec![1.0, 1.0]];
        let d = pairwise_sq_distances(&inputs(&layout, &rows, vec![])).unwrap();
        assert_eq!(d, vec![0.0, 25.0, 2.0, 25.0, 0.0, 13.0, 2.0, 13.0, 0.0]);
    }

    #[test]
    fn krum_by_hand() {
        // Points on a line: 0, 1, 2, 3, 100, n = 5, f = 1 → 2 nearest each.
        // Scores: 0 → 1+4 = 5; 1 → 1+1 = 2; 2 → 1+1 = 2; 3 → 1+4 = 5; 100 → 97²+98² = 19013.
        // Tie between 1 and 2 goes to the lower index.
        let (layout, rows) = line(&[0.0, 1.0, 2.0, 3.0, 100.0]);
        let s = krum(&inputs(&layout, &rows, vec![]), 1).unwrap();
        assert_eq!(s.scores, vec![5.0, 2.0, 2.0, 5.0, 19013.0]);
        assert_eq!(s.selected, vec![1]);
        assert_eq!(s.model, vec![1.0, 0.0]);
    }

    #[test]
    fn multi_krum_by_hand() {
        // Same points, m = 3: updates 1, 2 and one of {0, 3} (tie → 0), averaged
        // with weights 1, 1, 2: (1·1 + 1·2 + 2·0) / 4 = 0.75.
        let (layout, rows) = line(&[0.0, 1.0, 2.0, 3.0, 100.0]);
        let s = multi_krum(&inputs(&layout, &rows, vec![2.0, 1.0, 1.0, 1.0, 1.0]), 1, 3).unwrap();
        assert_eq!(s.selected, vec![1, 2, 0]);
        assert_eq!(s.model, vec![0.75, 0.0]);
        let s = multi_krum(&inputs(&layout, &rows, vec![]), 1, 5).unwrap();
        assert_eq!(s.model, vec![106.0 / 5.0, 0.0]);
        assert!(multi_krum(&inputs(&layout, &rows, vec![]), 1, 0).is_err());
        assert!(multi_krum(&inputs(&layout, &rows, vec![]), 1, 6).is_err());
    }

    #[test]
    fn bulyan_by_hand() {
        // n = 7, f = 1: θ = 5 picked by iterated Krum, β = 3 closest to the median.
        // Points 0, 1, 2, 3, 4, 50, −60. Iterated Krum keeps the five central
        // points {0..4}; per coordinate the median is 2 and the 3 closest are
        // 1, 2, 3 → 2. The outliers never count.
        let (layout, rows) = line(&[0.0, 1.0, 2.0, 3.0, 4.0, 50.0, -60.0]);
        let s = bulyan(&inputs(&layout, &rows, vec![]), 1).unwrap();
        let mut picked = s.selected.clone();
        picked.sort_unstable();
        assert_eq!(picked, vec![0, 1, 2, 3, 4]);
        assert_eq!(s.model, vec![2.0, 0.0]);
    }

    #[test]
    fn too_few_clients_is_an_error_not_a_guess() {
        let (layout, rows) = line(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let i = inputs(&layout, &rows, vec![]);
        // n = 6 ≤ 2f + 2 = 6 for f = 2.
        assert_eq!(krum(&i, 2).unwrap_err(), AggregationError::TooFewClients { rule: "krum", needed: 7, got: 6 });
        assert!(matches!(multi_krum(&i, 2, 2), Err(AggregationError::TooFewClients { .. })));
        // Bulyan needs 4f + 3 = 7.
        assert_eq!(bulyan(&i, 1).unwrap_err(), AggregationError::TooFewClients { rule: "bulyan", needed: 7, got: 6 });
        assert!(krum(&i, 1).is_ok());
    }

    #[test]
    fn blocked_distances_agree_with_a_direct_sum() {
        let n = 9;
        let d = 2 * JOB + 1234;
        let layout = Layout::new(vec![TensorInfo::new("a", [5]), TensorInfo::new("b", [d - 5])]).unwrap();
        let rows: Vec<Vec<f32>> =
            (0..n).map(|k| (0..d).map(|i| (((i * 13 + k * 7) % 29) as f32 - 14.0) / 7.0).collect()).collect();
        let got = pairwise_sq_distances(&inputs(&layout, &rows, vec![])).unwrap();
        for i in 0..n {
            for j in 0..n {
                let want: f64 = (0..d).map(|c| f64::from(rows[i][c] - rows[j][c]).powi(2)).sum();
                assert!((got[i * n + j] - want).abs() <= 1e-6 * want.max(1.0), "{i},{j}: {} vs {want}", got[i * n + j]);
            }
        }
    }
}
