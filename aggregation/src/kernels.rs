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
    const EXP: u32 = 0x7f80_0000;
    for (c, chunk) in x.chunks(SCAN_CHUNK).enumerate() {
        // A value is non-finite exactly when all its exponent bits are set.
        let any = chunk.iter().fold(0u32, |bad, v| bad | u32::from(v.to_bits() & EXP == EXP));
        if any != 0 {
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
    debug_assert_eq!(block.len(), n * width);
    debug_assert_eq!(dist.len(), n * n);
    for i in 0..n {
        let ri = &block[i * width..(i + 1) * width];
        let mut j = i + 1;
        // Four partners at a time: `ri` is loaded once for four distances.
        while j + 4 <= n {
            let r: [&[f32]; 4] = std::array::from_fn(|k| &block[(j + k) * width..(j + k + 1) * width]);
            let mut total = [0.0f64; 4];
            let mut c = 0;
            while c + LANES / 2 <= width {
                // f32 lanes are flushed to f64 every FLUSH columns, bounding
                // the rounding error of each partial sum.
                let stop = (c + FLUSH).min(width - (width - c) % (LANES / 2));
                let mut acc = [[0.0f32; LANES / 2]; 4];
                while c < stop {
                    for l in 0..LANES / 2 {
                        let a = ri[c + l];
                        for k in 0..4 {
                            let d = a - r[k][c + l];
                            acc[k][l] = fmadd::<FMA>(d, d, acc[k][l]);
                        }
                    }
                    c += LANES / 2;
                }
                for k in 0..4 {
                    total[k] += acc[k].iter().map(|&v| f64::from(v)).sum::<f64>();
                }
            }
            for k in 0..4 {
                let mut s = total[k];
                for cc in c..width {
                    let d = f64::from(ri[cc] - r[k][cc]);
                    s += d * d;
                }
                dist[i * n + j + k] += s;
            }
            j += 4;
        }
        while j < n {
            let rj = &block[j * width..(j + 1) * width];
            let mut s = 0.0f64;
            for (a, b) in ri.chunks(FLUSH).zip(rj.chunks(FLUSH)) {
                let mut acc = [0.0f32; LANES];
                for (a, b) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
                    for l in 0..LANES {
                        let d = a[l] - b[l];
                        acc[l] = fmadd::<FMA>(d, d, acc[l]);
                    }
                }
                s += acc.iter().map(|&v| f64::from(v)).sum::<f64>();
            }
            // FLUSH is a multiple of LANES, so only the last chunk has a tail.
            for cc in (width / FLUSH) * FLUSH + (width % FLUSH) / LANES * LANES..width {
                let d = f64::from(ri[cc] - rj[cc]);
                s += d * d;
            }
            dist[i * n + j] += s;
            j += 1;
        }
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
        let (n, width) = (7, 37);
        let block: Vec<f32> = (0..n * width).map(|k| ((k * 7919) % 101) as f32 / 10.0 - 5.0).collect();
        let mut dist = vec![0.0; n * n];
        pair_sq_dists(&block, n, width, &mut dist);
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
