//! Coordinate-wise robust rules: median, trimmed mean, and the coordinate
//! phase of Bulyan.
//!
//! All of them need, for each coordinate, the clients' values in sorted
//! order. The model is cut into blocks of `width` coordinates; a block of
//! every client is copied into a `clients × width` scratch buffer (applying
//! the clipping scale on the way), sorted column-wise by a sorting network
//! (`network::batcher`, `kernels::sort_columns`), and reduced into the
//! output. Working memory is O(clients × width) per thread, independent of
//! the model size; blocks run in parallel.

use rayon::prelude::*;

use crate::error::{AggregationError, Result};
use crate::inputs::{BadValue, Inputs};
use crate::kernels;
use crate::network;

/// Coordinates handed to one parallel job; each job walks them in blocks.
const JOB: usize = 1 << 14;

/// Target size of one scratch block in `f32`s (64 KiB: stays in L2 while the
/// network sweeps it ~log²(n) times).
const BLOCK_VALUES: usize = 16 * 1024;

/// Coordinate-wise median (Yin et al. 2018, "Byzantine-Robust Distributed
/// Learning: Towards Optimal Statistical Rates"). With an even number of
/// updates, the mean of the two middle values (NumPy's convention).
/// Unweighted: a sample count is a claim the median must not trust.
pub fn median(inputs: &Inputs<'_>) -> Result<Vec<f32>> {
    median_into(inputs, Vec::new())
}

pub(crate) fn median_into(inputs: &Inputs<'_>, out: Vec<f32>) -> Result<Vec<f32>> {
    let n = inputs.len();
    if n == 0 {
        return Err(AggregationError::TooFewClients { rule: "median", needed: 1, got: 0 });
    }
    let all: Vec<usize> = (0..n).collect();
    sorted_blocks(inputs, &all, out, move |rows, width, out| {
        if n % 2 == 1 {
            out.copy_from_slice(&rows[(n / 2) * width..(n / 2 + 1) * width]);
        } else {
            let lo = &rows[(n / 2 - 1) * width..(n / 2) * width];
            let hi = &rows[(n / 2) * width..(n / 2 + 1) * width];
            for ((o, &a), &b) in out.iter_mut().zip(lo).zip(hi) {
                *o = (a + b) * 0.5;
            }
        }
    })
}

/// Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the
/// `⌊β·n⌋` smallest and `⌊β·n⌋` largest values and average the rest.
/// `β ∈ [0, 0.5)`; unweighted, like the median.
pub fn trimmed_mean(inputs: &Inputs<'_>, beta: f64) -> Result<Vec<f32>> {
    trimmed_mean_into(inputs, beta, Vec::new())
}

pub(crate) fn trimmed_mean_into(inputs: &Inputs<'_>, beta: f64, out: Vec<f32>) -> Result<Vec<f32>> {
    if !(0.0..0.5).contains(&beta) {
        return Err(AggregationError::InvalidParameter {
            name: "beta",
            reason: format!("the trim fraction must be in [0, 0.5), got {beta}"),
        });
    }
    let n = inputs.len();
    if n == 0 {
        return Err(AggregationError::TooFewClients { rule: "trimmed mean", needed: 1, got: 0 });
    }
    let cut = (beta * n as f64).floor() as usize;
    let kept = n - 2 * cut;
    let all: Vec<usize> = (0..n).collect();
    sorted_blocks(inputs, &all, out, move |rows, width, out| {
        mean_of_rows(&rows[cut * width..(cut + kept) * width], width, out);
    })
}

/// Bulyan's coordinate phase (El Mhamdi et al. 2018, "The Hidden
/// Vulnerability of Distributed Learning in Byzantium", Algorithm 2): over
/// the `selected` updates, per coordinate, the mean of the `beta` values
/// closest to the coordinate's median.
pub(crate) fn closest_to_median_mean(
    inputs: &Inputs<'_>,
    selected: &[usize],
    beta: usize,
    out: Vec<f32>,
) -> Result<Vec<f32>> {
    let theta = selected.len();
    debug_assert!(beta >= 1 && beta <= theta);
    sorted_blocks(inputs, selected, out, move |rows, width, out| {
        let row = |r: usize| &rows[r * width..(r + 1) * width];
        let mut med = vec![0.0f32; width];
        if theta % 2 == 1 {
            med.copy_from_slice(row(theta / 2));
        } else {
            for ((m, &a), &b) in med.iter_mut().zip(row(theta / 2 - 1)).zip(row(theta / 2)) {
                *m = (a + b) * 0.5;
            }
        }
        // In sorted order the β values nearest the median are a window
        // [s, s + β); of all windows it is the one whose farthest member is
        // nearest, since its farthest member is the β-th smallest distance.
        // So: slide the window over every start, keep per column the window
        // with the smallest "farthest distance" and its sum. Whole-row
        // operations, no per-column branches.
        let mut sum = vec![0.0f32; width];
        for r in 0..beta {
            kernels::axpy(&mut sum, row(r), 1.0);
        }
        let mut best_cost = vec![f32::INFINITY; width];
        let mut best_sum = vec![0.0f32; width];
        for s in 0..=theta - beta {
            if s > 0 {
                for ((acc, &gone), &new) in sum.iter_mut().zip(row(s - 1)).zip(row(s + beta - 1)) {
                    *acc += new - gone;
                }
            }
            let (lo, hi) = (row(s), row(s + beta - 1));
            for c in 0..width {
                let cost = (med[c] - lo[c]).max(hi[c] - med[c]);
                let better = cost < best_cost[c];
                best_cost[c] = if better { cost } else { best_cost[c] };
                best_sum[c] = if better { sum[c] } else { best_sum[c] };
            }
        }
        let inv = 1.0 / beta as f32;
        for (o, &v) in out.iter_mut().zip(&best_sum) {
            *o = v * inv;
        }
    })
}

fn mean_of_rows(rows: &[f32], width: usize, out: &mut [f32]) {
    let k = rows.len() / width;
    out.copy_from_slice(&rows[..width]);
    for r in 1..k {
        kernels::axpy(out, &rows[r * width..(r + 1) * width], 1.0);
    }
    let inv = 1.0 / k as f32;
    out.iter_mut().for_each(|v| *v *= inv);
}

/// Runs `reduce(sorted_rows, width, out_block)` over every block of the
/// model, where `sorted_rows` holds the `clients`' values of the block
/// (scaled by their clipping factors), each column sorted ascending.
fn sorted_blocks<F>(inputs: &Inputs<'_>, clients: &[usize], out: Vec<f32>, reduce: F) -> Result<Vec<f32>>
where
    F: Fn(&[f32], usize, &mut [f32]) + Sync,
{
    let n = clients.len();
    let layout = inputs.layout();
    let net = network::batcher(n);
    let width = (BLOCK_VALUES / n.max(1)).clamp(16, 1024) / 16 * 16;
    // Every reduce call writes its whole block.
    let mut out = kernels::reuse(out, layout.numel());
    let bad = out
        .par_chunks_mut(JOB)
        .enumerate()
        .map_init(
            || vec![0.0f32; n * width],
            |scratch, (job, out_job)| {
                let job_start = job * JOB;
                let job_len = out_job.len();
                let mut bad = None;
                for (b, out_block) in out_job.chunks_mut(width).enumerate() {
                    let start = job_start + b * width;
                    let w = out_block.len();
                    let rows = &mut scratch[..n * w];
                    for (r, &client) in clients.iter().enumerate() {
                        bad = bad.or(gather(inputs, client, start, &mut rows[r * w..(r + 1) * w]));
                    }
                    if bad.is_some() {
                        // NaN has no place in a sorting network, and the
                        // result is discarded: report the job's first bad value.
                        return inputs.first_non_finite_among(clients, job_start, job_len);
                    }
                    kernels::sort_columns(rows, w, &net);
                    reduce(rows, w, out_block);
                }
                bad
            },
        )
        .reduce(|| None, |a: Option<BadValue>, b| a.into_iter().chain(b).min());
    match bad {
        Some(bad) => Err(inputs.non_finite_error(bad)),
        None => Ok(out),
    }
}

/// Copies the flat coordinates `start..start + dst.len()` of update `client`
/// into `dst`, times its clipping scale; the range may span tensors.
/// Returns where the first non-finite value is, if the range holds one.
pub(crate) fn gather(inputs: &Inputs<'_>, client: usize, start: usize, dst: &mut [f32]) -> Option<BadValue> {
    let scale = inputs.scales()[client];
    for (at, src) in inputs.pieces(client, start, dst.len()) {
        kernels::scale_into(&mut dst[at..at + src.len()], src, scale);
    }
    // Checked on the copy, still in L1: no second read of the input.
    if kernels::all_finite(dst) { None } else { inputs.first_non_finite(client, start, dst.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Layout, TensorInfo};

    fn run<T>(rows: &[&[f32]], f: impl Fn(&Inputs<'_>) -> T) -> T {
        let layout = Layout::new(vec![TensorInfo::new("a", [2]), TensorInfo::new("b", [rows[0].len() - 2])]).unwrap();
        let views = rows.iter().enumerate().map(|(i, r)| layout.view_flat(i, r).unwrap()).collect();
        f(&Inputs::new(&layout, views, vec![]).unwrap())
    }

    #[test]
    fn median_by_hand() {
        // Columns: {1,5,3} → 3; {−2,−8,100} → −2; {0,0,0} → 0.
        let got = run(&[&[1.0, -2.0, 0.0], &[5.0, -8.0, 0.0], &[3.0, 100.0, 0.0]], |i| median(i).unwrap());
        assert_eq!(got, vec![3.0, -2.0, 0.0]);
        // Even n: mean of the two middle values. {1,2,3,40} → 2.5; {4,4,−4,−4} → 0.
        let got =
            run(&[&[1.0, 4.0, 7.0], &[40.0, -4.0, 7.0], &[3.0, 4.0, 7.0], &[2.0, -4.0, 7.0]], |i| median(i).unwrap());
        assert_eq!(got, vec![2.5, 0.0, 7.0]);
    }

    #[test]
    fn trimmed_mean_by_hand() {
        // n = 5, β = 0.2 → cut 1 from each end. Column {10, 1, 2, 3, −50} → mean(1, 2, 3) = 2.
        let rows: [&[f32]; 5] =
            [&[10.0, 0.0, 1.0], &[1.0, 0.0, 1.0], &[2.0, 0.0, 1.0], &[3.0, 0.0, 1.0], &[-50.0, 5.0, 1.0]];
        assert_eq!(run(&rows, |i| trimmed_mean(i, 0.2).unwrap()), vec![2.0, 0.0, 1.0]);
        // β = 0.1 → ⌊0.5⌋ = 0: the plain mean, −34/5.
        assert_eq!(run(&rows, |i| trimmed_mean(i, 0.1).unwrap())[0], -6.8);
        for beta in [0.5, -0.1, f64::NAN] {
            assert!(matches!(
                run(&rows, |i| trimmed_mean(i, beta)),
                Err(AggregationError::InvalidParameter { name: "beta", .. })
            ));
        }
    }

    #[test]
    fn closest_to_median_by_hand() {
        // Column {0, 1, 2, 10, 11}: median 2; the 3 closest are 0, 1, 2 (|10 − 2| = 8 > 2) → 1.
        // Column {−3, −1, 0, 1, 2}: median 0; closest 3 are −1, 0, 1 → 0.
        let rows: [&[f32]; 5] =
            [&[0.0, -3.0, 0.0], &[1.0, -1.0, 0.0], &[2.0, 0.0, 0.0], &[10.0, 1.0, 0.0], &[11.0, 2.0, 0.0]];
        let got = run(&rows, |i| closest_to_median_mean(i, &[0, 1, 2, 3, 4], 3, Vec::new()).unwrap());
        assert_eq!(got, vec![1.0, 0.0, 0.0]);
        // Only the selected rows take part: {1, 10, 11} → median 10, 2 closest: 10, 11.
        let got = run(&rows, |i| closest_to_median_mean(i, &[1, 3, 4], 2, Vec::new()).unwrap());
        assert_eq!(got[0], 10.5);
    }

    /// Many blocks and jobs, rows of different scales, clipping applied:
    /// compare with a per-coordinate sort.
    #[test]
    fn blocked_rules_agree_with_a_scalar_reference() {
        let n = 7;
        let d = JOB + 2 * 1000 + 13; // spans jobs, blocks and the tensor boundary at 2
        let data: Vec<Vec<f32>> = (0..n)
            .map(|k| (0..d).map(|i| (((i * 31 + k * 17) % 97) as f32 - 48.0) * (k as f32 + 1.0)).collect())
            .collect();
        let layout = Layout::new(vec![TensorInfo::new("a", [2]), TensorInfo::new("b", [d - 2])]).unwrap();
        let views = data.iter().enumerate().map(|(i, r)| layout.view_flat(i, r).unwrap()).collect();
        let inputs = Inputs::new(&layout, views, vec![]).unwrap().clip(2000.0).unwrap();
        let med = median(&inputs).unwrap();
        let tm = trimmed_mean(&inputs, 0.3).unwrap();
        let selected = [6, 0, 2, 5, 1];
        let bm = closest_to_median_mean(&inputs, &selected, 3, Vec::new()).unwrap();
        for c in (0..d).step_by(97).chain([d - 1]) {
            let mut col: Vec<f32> = (0..n).map(|k| data[k][c] * inputs.scales()[k]).collect();
            col.sort_by(f32::total_cmp);
            assert_eq!(med[c], col[3], "median at {c}");
            let want = col[2..5].iter().sum::<f32>() / 3.0;
            assert!((tm[c] - want).abs() <= 1e-4 * want.abs().max(1.0), "trimmed mean at {c}");
            let mut sel: Vec<f32> = selected.iter().map(|&k| data[k][c] * inputs.scales()[k]).collect();
            sel.sort_by(f32::total_cmp);
            let m = sel[2];
            sel.sort_by(|a, b| (a - m).abs().total_cmp(&(b - m).abs()));
            let want = sel[..3].iter().sum::<f32>() / 3.0;
            assert!((bm[c] - want).abs() <= 1e-4 * want.abs().max(1.0), "bulyan at {c}: {} vs {want}", bm[c]);
        }
    }
}
