//! The inner loops. Everything hot goes through here, written so the
//! compiler vectorises it: fixed-width lane accumulators for reductions,
//! branch-free min/max for the sorting networks, and a runtime switch to
//! AVX2+FMA code on x86-64 CPUs that have it (the portable build targets
//! SSE2 only).

/// Lanes per accumulator: two AVX2 registers of `f32`, enough independent
/// adds to hide the FP latency.
const LANES: usize = 16;

/// Elements per chunk when scanning for non-finite values: small enough to be
/// re-read from L1 when a chunk turns out to hold one.
const SCAN_CHUNK: usize = 4096;

/// Columns summed in `f32` before a distance's partial sum moves to `f64`:
/// each lane adds at most `FLUSH / 8` terms, keeping the relative error of
/// a distance near 1e-6 rather than growing with the model size.
const FLUSH: usize = 256;

/// Squared L2 norm of `x` accumulated in `f64`, and the index of its first
/// non-finite value, if any.
///
/// Squares are summed in `f64` so that large finite values cannot overflow:
/// any non-finite sum therefore means a NaN or ±Inf in the input.
pub(crate) fn sq_norm_checked(x: &[f32]) -> (f64, Option<usize>) {
    let mut total = 0.0f64;
    for (c, chunk) in x.chunks(SCAN_CHUNK).enumerate() {
        let s = sq_sum_f64(chunk);
        if !s.is_finite() {
            let i = chunk.iter().position(|v| !v.is_finite()).expect("a non-finite sum has a non-finite term");
            return (f64::NAN, Some(c * SCAN_CHUNK + i));
        }
        total += s;
    }
    (total, None)
}

fn sq_sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; LANES / 2];
    let chunks = x.chunks_exact(LANES / 2);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let v = f64::from(v);
            *a += v * v;
        }
    }
    let mut s: f64 = acc.iter().sum();
    for &v in rest {
        s += f64::from(v) * f64::from(v);
    }
    s
}

/// Elements per parallel job: large enough to amortise rayon's scheduling,
/// small enough to split a CNN-sized model over every core.
pub(crate) const PAR_CHUNK: usize = 1 << 16;

/// [`sq_norm_checked`] over parallel chunks; the index is still the first.
pub(crate) fn par_sq_norm_checked(x: &[f32]) -> (f64, Option<usize>) {
    use rayon::prelude::*;
    x.par_chunks(PAR_CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let (s, bad) = sq_norm_checked(chunk);
            (s, bad.map(|i| c * PAR_CHUNK + i))
        })
        .reduce(
            || (0.0, None),
            |(a, ea), (b, eb)| {
                let first = match (ea, eb) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                (a + b, first)
            },
        )
}

/// Index of the first non-finite value of `x`.
pub(crate) fn first_non_finite(x: &[f32]) -> Option<usize> {
    for (c, chunk) in x.chunks(SCAN_CHUNK).enumerate() {
        if !all_finite(chunk) {
            return Some(c * SCAN_CHUNK + chunk.iter().position(|v| !v.is_finite()).expect("found above"));
        }
    }
    None
}

/// `acc[i] += a * x[i]`.
#[inline]
pub(crate) fn axpy(acc: &mut [f32], x: &[f32], a: f32) {
    debug_assert_eq!(acc.len(), x.len());
    for (s, &v) in acc.iter_mut().zip(x) {
        *s += a * v;
    }
}

/// `buffer` resized to `len` values for a rule to overwrite completely.
///
/// A buffer that already has the length is returned as it is, its old
/// values left for the rule to overwrite: reusing one output buffer from
/// round to round spares the page faults of fresh memory, which for a
/// 100 MB model cost more than the aggregation itself.
pub(crate) fn reuse(mut buffer: Vec<f32>, len: usize) -> Vec<f32> {
    if buffer.len() != len {
        buffer.clear();
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Whether every value of `x` is finite: a branch-free OR of "exponent all
/// ones" over the slice, which vectorises.
#[inline]
pub(crate) fn all_finite(x: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    x.iter().fold(0u32, |bad, v| bad | u32::from(v.to_bits() & EXP == EXP)) == 0
}

/// `acc[i] += a * x[i]`, and whether every `x[i]` is finite, in one pass.
#[inline]
pub(crate) fn axpy_checked(acc: &mut [f32], x: &[f32], a: f32) -> bool {
    const EXP: u32 = 0x7f80_0000;
    debug_assert_eq!(acc.len(), x.len());
    let mut bad = 0u32;
    for (s, &v) in acc.iter_mut().zip(x) {
        *s += a * v;
        bad |= u32::from(v.to_bits() & EXP == EXP);
    }
    bad == 0
}

/// `dst[i] = a * x[i]`.
#[inline]
pub(crate) fn scale_into(dst: &mut [f32], x: &[f32], a: f32) {
    debug_assert_eq!(dst.len(), x.len());
    if a == 1.0 {
        dst.copy_from_slice(x);
    } else {
        for (d, &v) in dst.iter_mut().zip(x) {
            *d = a * v;
        }
    }
}

/// Runs `$body` compiled for AVX2+FMA when the CPU has them, else portably.
///
/// `$body` must be an `#[inline(always)]` generic function; the macro creates
/// two monomorphic copies so the compiler can use wider vectors in one.
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) $(-> $ret)? {
                    $body::<true>($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports every feature `wide` was compiled for.
                    #[allow(unsafe_code)]
                    return unsafe { wide($($arg),*) };
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

#[inline(always)]
fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    // Without hardware FMA, `mul_add` is a slow libm call: fall back to mul + add.
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

dispatch! {
    /// Adds `Σ_c (rows[i][c] - rows[j][c])²` to `dist[i * n + j]` for every
    /// pair `i < j` of the `n` rows of `block` (row-major, `width` columns).
    ///
    /// This is Krum's inner loop: O(n² · width) flops over a block that
    /// stays in L2, computed directly rather than through
    /// `‖a‖² + ‖b‖² − 2a·b`, which cancels catastrophically for near-equal updates.
    pub(crate) fn pair_sq_dists(block: &[f32], n: usize, width: usize, dist: &mut [f64]) => pair_sq_dists_body
}

#[inline(always)]
fn pair_sq_dists_body<const FMA: bool>(block: &[f32], n: usize, width: usize, dist: &mut [f64]) {
    const W: usize = LANES / 2;
    debug_assert_eq!(block.len(), n * width);
    debug_assert_eq!(dist.len(), n * n);
    // Rows as arrays of W-lane vectors, the tail (under W values) apart:
    // fixed-size arrays let the compiler drop bounds checks and keep every
    // accumulator in a register.
    let rows: Vec<(&[[f32; W]], &[f32])> = block.chunks_exact(width).map(|r| r.as_chunks::<W>()).collect();
    let tail_sq =
        |a: &[f32], b: &[f32]| -> f64 { a.iter().zip(b).map(|(&x, &y)| f64::from(x - y) * f64::from(x - y)).sum() };
    for i in 0..n {
        let (ai, tail_i) = rows[i];
        let mut j = i + 1;
        // Four partners at a time: each vector of row i is loaded once for four distances.
        while j + 4 <= n {
            let b: [&[[f32; W]]; 4] = std::array::from_fn(|k| rows[j + k].0);
            let total = if FMA {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `pair_sq_dists_body::<true>` is only called from the
                // `wide` copy that `dispatch!` runs after detecting AVX2 and FMA.
                #[allow(unsafe_code)]
                unsafe {
                    avx2::four_sq_dists(ai, b)
                }
                #[cfg(not(target_arch = "x86_64"))]
                four_sq_dists_portable::<FMA>(ai, b)
            } else {
                four_sq_dists_portable::<FMA>(ai, b)
            };
            for k in 0..4 {
                dist[i * n + j + k] += total[k] + tail_sq(tail_i, rows[j + k].1);
            }
            j += 4;
        }
        while j < n {
            let (aj, tail_j) = rows[j];
            let mut s = 0.0f64;
            for (a, b) in ai.chunks(FLUSH / W).zip(aj.chunks(FLUSH / W)) {
                // Two accumulators to overlap the FMA latency.
                let (mut even, mut odd) = ([0.0f32; W], [0.0f32; W]);
                let (a2, a1) = a.as_chunks::<2>();
                let (b2, b1) = b.as_chunks::<2>();
                for (x, y) in a2.iter().zip(b2) {
                    for l in 0..W {
                        let (d0, d1) = (x[0][l] - y[0][l], x[1][l] - y[1][l]);
                        even[l] = fmadd::<FMA>(d0, d0, even[l]);
                        odd[l] = fmadd::<FMA>(d1, d1, odd[l]);
                    }
                }
                for (x, y) in a1.iter().zip(b1) {
                    for l in 0..W {
                        let d = x[l] - y[l];
                        even[l] = fmadd::<FMA>(d, d, even[l]);
                    }
                }
                s += even.iter().chain(&odd).map(|&v| f64::from(v)).sum::<f64>();
            }
            dist[i * n + j] += s + tail_sq(tail_i, tail_j);
            j += 1;
        }
    }
}

/// `Σ (a − bₖ)²` over whole vectors for four partners `bₖ`, portably.
#[inline(always)]
fn four_sq_dists_portable<const FMA: bool>(a: &[[f32; 8]], b: [&[[f32; 8]]; 4]) -> [f64; 4] {
    let mut total = [0.0f64; 4];
    let mut start = 0;
    while start < a.len() {
        // f32 lanes are flushed to f64 every FLUSH columns, bounding the
        // rounding error of each partial sum.
        let end = (start + FLUSH / 8).min(a.len());
        let mut acc = [[0.0f32; 8]; 4];
        for q in start..end {
            for k in 0..4 {
                for l in 0..8 {
                    let d = a[q][l] - b[k][q][l];
                    acc[k][l] = fmadd::<FMA>(d, d, acc[k][l]);
                }
            }
        }
        for k in 0..4 {
            total[k] += acc[k].iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        start = end;
    }
    total
}

/// Hand-written AVX2 for the one kernel the auto-vectoriser only half
/// manages (it picks 4-lane vectors for the four-partner loop).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_setzero_ps, _mm256_sub_ps};

    use super::FLUSH;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn sum(v: __m256) -> f64 {
        bytemuck::cast::<__m256, [f32; 8]>(v).iter().map(|&x| f64::from(x)).sum()
    }

    /// Like `four_sq_dists_portable`, eight lanes per instruction and four
    /// independent accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn four_sq_dists(a: &[[f32; 8]], b: [&[[f32; 8]]; 4]) -> [f64; 4] {
        let n = a.len();
        let b: [&[[f32; 8]]; 4] = std::array::from_fn(|k| &b[k][..n]);
        let mut total = [0.0f64; 4];
        let mut start = 0;
        while start < n {
            let end = (start + FLUSH / 8).min(n);
            let mut acc = [_mm256_setzero_ps(); 4];
            for q in start..end {
                let x: __m256 = bytemuck::cast(a[q]);
                for k in 0..4 {
                    let d = _mm256_sub_ps(x, bytemuck::cast(b[k][q]));
                    acc[k] = _mm256_fmadd_ps(d, d, acc[k]);
                }
            }
            for k in 0..4 {
                total[k] += sum(acc[k]);
            }
            start = end;
        }
        total
    }
}

dispatch! {
    /// Sorts every column of `block` (`rows` rows of `width` values, row-major)
    /// ascending, by applying the comparator network `net` to whole rows.
    ///
    /// Each comparator is an element-wise min/max of two rows, so one network
    /// sorts `width` columns at once in SIMD lanes: no branches, no
    /// data-dependent control flow. Values must not be NaN.
    pub(crate) fn sort_columns(block: &mut [f32], width: usize, net: &[(u16, u16)]) => sort_columns_body
}

#[inline(always)]
fn sort_columns_body<const FMA: bool>(block: &mut [f32], width: usize, net: &[(u16, u16)]) {
    for &(i, j) in net {
        let (i, j) = (usize::from(i), usize::from(j));
        debug_assert!(i < j);
        let (lo, hi) = block.split_at_mut(j * width);
        let a = &mut lo[i * width..(i + 1) * width];
        let b = &mut hi[..width];
        for (x, y) in a.iter_mut().zip(b.iter_mut()) {
            let (p, q) = (*x, *y);
            // `if q < p` maps to a single minps/maxps; NaN is excluded upstream.
            *x = if q < p { q } else { p };
            *y = if q < p { p } else { q };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_check_finds_the_first_bad_value() {
        let mut x = vec![1.0f32; 10_000];
        assert_eq!(sq_norm_checked(&x), (10_000.0, None));
        x[7_000] = f32::INFINITY;
        x[9_000] = f32::NAN;
        assert_eq!(sq_norm_checked(&x).1, Some(7_000));
        assert_eq!(first_non_finite(&x), Some(7_000));
        // Large but finite values do not overflow the f64 sum.
        assert_eq!(sq_norm_checked(&[f32::MAX, f32::MAX]).1, None);
        assert_eq!(first_non_finite(&[f32::MAX, f32::MIN_POSITIVE, -0.0]), None);
    }

    #[test]
    fn pair_distances_match_a_direct_computation() {
        let (n, width) = (7, 37 + 2 * FLUSH);
        let block: Vec<f32> = (0..n * width).map(|k| ((k * 7919) % 101) as f32 / 10.0 - 5.0).collect();
        let mut dist = vec![0.0; n * n];
        pair_sq_dists(&block, n, width, &mut dist);
        // The portable copy too, whatever this CPU supports.
        let mut portable = vec![0.0; n * n];
        pair_sq_dists_body::<false>(&block, n, width, &mut portable);
        for (a, b) in dist.iter().zip(&portable) {
            assert!((a - b).abs() <= 1e-4 * a.max(1.0), "{a} vs {b}");
        }
        for i in 0..n {
            for j in 0..n {
                let want: f64 = if j > i {
                    (0..width).map(|c| f64::from(block[i * width + c] - block[j * width + c]).powi(2)).sum()
                } else {
                    0.0
                };
                assert!(
                    (dist[i * n + j] - want).abs() <= 1e-4 * want.max(1.0),
                    "{i},{j}: {} vs {want}",
                    dist[i * n + j]
                );
            }
        }
    }
}
