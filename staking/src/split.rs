//! Pro-rata division of an amount in integers.

use crate::amount::Amount;

/// Splits `total` in proportion to `weights`: share `i` is exactly
/// `floor(total · w_i / Σw)`, computed with a 192-bit intermediate product so
/// no weight is ever rounded first. Returns the shares and the remainder that
/// flooring left over (`total − Σ shares`, fewer micro-units than there are
/// weights). Callers leave the remainder where the money came from, so
/// nothing vanishes.
///
/// Only if `Σw` itself overflows `u128` (weights no real stake can produce)
/// are all weights first shifted right by the same number of bits. All-zero
/// weights pay nothing and return the whole `total` as remainder.
pub fn pro_rata(total: Amount, weights: &[u128]) -> (Vec<Amount>, Amount) {
    let (scaled, sum) = match weights.iter().try_fold(0u128, |sum, w| sum.checked_add(*w)) {
        Some(sum) => (std::borrow::Cow::Borrowed(weights), sum),
        None => {
            // n weights each below 2^(128 − bits(n)) sum below 2^128.
            let shift = u128::BITS - (weights.len() as u128).leading_zeros();
            let scaled: Vec<u128> = weights.iter().map(|w| w >> shift).collect();
            let sum = scaled.iter().sum();
            (std::borrow::Cow::Owned(scaled), sum)
        }
    };
    if sum == 0 {
        return (vec![Amount::ZERO; weights.len()], total);
    }
    let mut paid = 0u64;
    let shares = scaled
        .iter()
        .map(|&w| {
            let share = mul_div_floor(total.micro(), w, sum);
            paid += share;
            Amount::from_micro(share)
        })
        .collect();
    (shares, Amount::from_micro(total.micro() - paid))
}

/// `floor(a · b / c)` for `b ≤ c`, `c > 0`, exact: the result is at most `a`.
fn mul_div_floor(a: u64, b: u128, c: u128) -> u64 {
    debug_assert!(b <= c && c > 0);
    if let Some(product) = u128::from(a).checked_mul(b) {
        return (product / c) as u64;
    }
    // 256-bit product (hi, lo) = a · (b_hi · 2^64 + b_lo).
    let (b_hi, b_lo) = (b >> 64, b & u128::from(u64::MAX));
    let low = u128::from(a) * b_lo;
    let high = u128::from(a) * b_hi;
    let (lo, carry) = low.overflowing_add(high << 64);
    let hi = (high >> 64) + u128::from(carry);
    // Restoring long division, one bit at a time; the remainder can need 129
    // bits for a moment, which `overflow` tracks.
    let mut remainder = 0u128;
    let mut quotient = 0u128;
    for bit in (0..256).rev() {
        let next = if bit >= 128 { (hi >> (bit - 128)) & 1 } else { (lo >> bit) & 1 };
        let overflow = remainder >> 127 == 1;
        remainder = (remainder << 1) | next;
        if overflow || remainder >= c {
            remainder = remainder.wrapping_sub(c);
            if bit < 128 {
                quotient |= 1 << bit;
            }
        }
    }
    quotient as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_with_floor_and_returns_the_rest() {
        let (shares, rest) = pro_rata(Amount::from_micro(100), &[1, 1, 1]);
        assert_eq!(shares, vec![Amount::from_micro(33); 3]);
        assert_eq!(rest, Amount::from_micro(1));
        let (shares, rest) = pro_rata(Amount::from_micro(10), &[0, 0]);
        assert_eq!(shares, vec![Amount::ZERO; 2]);
        assert_eq!(rest, Amount::from_micro(10));
        let (shares, rest) = pro_rata(Amount::from_micro(7), &[]);
        assert!(shares.is_empty());
        assert_eq!(rest, Amount::from_micro(7));
    }

    #[test]
    fn wide_products_are_exact() {
        // 2^64 − 1 times 3·2^100 over 4·2^100: needs 192 bits in between.
        let w = 3u128 << 100;
        let c = 4u128 << 100;
        assert_eq!(mul_div_floor(u64::MAX, w, c), ((u128::from(u64::MAX) * 3) / 4) as u64);
        assert_eq!(mul_div_floor(u64::MAX, c, c), u64::MAX);
        assert_eq!(mul_div_floor(u64::MAX, u128::MAX - 1, u128::MAX), u64::MAX - 1);
        let (shares, rest) = pro_rata(Amount::from_micro(4_000_000), &[2 * 10u128.pow(24), 85 * 10u128.pow(22)]);
        assert_eq!(shares, vec![Amount::from_micro(2_807_017), Amount::from_micro(1_192_982)]);
        assert_eq!(rest, Amount::from_micro(1));
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let (shares, rest) = pro_rata(Amount::from_micro(u64::MAX), &[u128::MAX, u128::MAX]);
        assert_eq!(shares[0], shares[1]);
        assert_eq!(shares[0].micro(), u64::MAX / 2);
        assert_eq!(rest.micro(), 1);
    }

    proptest! {
        #[test]
        fn shares_plus_rest_is_total(total in any::<u64>(), weights in proptest::collection::vec(any::<u128>(), 0..20)) {
            let (shares, rest) = pro_rata(Amount::from_micro(total), &weights);
            let paid: u128 = shares.iter().map(|s| u128::from(s.micro())).sum();
            prop_assert_eq!(paid + u128::from(rest.micro()), u128::from(total));
        }

        #[test]
        fn wide_division_matches_narrow(a in any::<u64>(), b in any::<u64>(), c in 1u64..) {
            let (b, c) = if b <= c { (b, c) } else { (c, b) };
            // Scaling b and c by 2^64 forces the wide path without changing the quotient.
            let expected = (u128::from(a) * u128::from(b) / u128::from(c)) as u64;
            prop_assert_eq!(mul_div_floor(a, u128::from(b) << 64, u128::from(c) << 64), expected);
        }

        #[test]
        fn small_weights_are_exact(total in 0u64..1_000_000_000, weights in proptest::collection::vec(0u128..1_000_000, 1..20)) {
            let (shares, _) = pro_rata(Amount::from_micro(total), &weights);
            let sum: u128 = weights.iter().sum();
            for (share, w) in shares.iter().zip(&weights) {
                let expected = (u128::from(total) * w).checked_div(sum).unwrap_or(0);
                prop_assert_eq!(u128::from(share.micro()), expected);
            }
        }
    }
}
