//! Sorting networks for column-wise sorting of small row sets.
//!
//! Coordinate-wise rules need, for every coordinate, the clients' values in
//! order. Sorting each coordinate's `n` values with a comparison sort is
//! branchy scalar work. A sorting network instead applies the same fixed
//! sequence of compare-exchanges to every coordinate, so a block of
//! coordinates is sorted with whole-row min/max operations that vectorise
//! (see `kernels::sort_columns`).

/// A comparator network that sorts `n` wires: pairs `(i, j)`, `i < j`, after
/// which wire `i` holds the smaller value.
///
/// Batcher's odd–even merge sort (Batcher 1968, "Sorting networks and their
/// applications") for the next power of two, restricted to wires below `n`:
/// with the missing wires thought of as +∞, every comparator that touches
/// one is a no-op (the +∞ already sits on the higher wire), so dropping them
/// leaves a valid network for exactly `n` wires. Size O(n log² n).
pub(crate) fn batcher(n: usize) -> Vec<(u16, u16)> {
    assert!(n <= usize::from(u16::MAX), "too many rows for a sorting network");
    let size = n.next_power_of_two();
    let mut net = Vec::new();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < size {
                for i in 0..k.min(size - j - k) {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) && b < n {
                        net.push((a as u16, b as u16));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(net: &[(u16, u16)], v: &mut [u32]) {
        for &(i, j) in net {
            let (i, j) = (usize::from(i), usize::from(j));
            if v[j] < v[i] {
                v.swap(i, j);
            }
        }
    }

    /// The 0–1 principle (Knuth, TAOCP vol. 3, 5.3.4): a network sorts every
    /// input iff it sorts every 0/1 input. Exhaustive for n ≤ 16.
    #[test]
    fn sorts_every_zero_one_input() {
        for n in 1..=16usize {
            let net = batcher(n);
            for bits in 0u32..(1 << n) {
                let mut v: Vec<u32> = (0..n).map(|i| (bits >> i) & 1).collect();
                apply(&net, &mut v);
                assert!(v.windows(2).all(|w| w[0] <= w[1]), "n={n} bits={bits:b}");
            }
        }
    }

    #[test]
    fn sorts_larger_random_inputs() {
        let mut state = 0x9e37_79b9_u32;
        for n in [17, 31, 33, 64, 100, 129] {
            let net = batcher(n);
            for _ in 0..50 {
                let mut v: Vec<u32> = (0..n)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        state % 1000
                    })
                    .collect();
                let mut want = v.clone();
                want.sort_unstable();
                apply(&net, &mut v);
                assert_eq!(v, want, "n={n}");
            }
        }
    }

    #[test]
    fn known_sizes() {
        // Batcher's network for 2^p wires has (p² − p + 4)·2^(p−2) − 1 comparators.
        assert_eq!(batcher(8).len(), 19);
        assert_eq!(batcher(16).len(), 63);
        assert_eq!(batcher(1).len(), 0);
        assert_eq!(batcher(2), vec![(0, 1)]);
    }
}
