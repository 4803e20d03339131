//! What malicious simulated clients do to their updates.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// An attack a malicious client applies to the honest update it computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attack {
    /// Send Gaussian noise `N(0, σ²)` per coordinate instead of the update.
    Noise {
        /// Standard deviation σ, finite and positive.
        std: f32,
    },
    /// Send `−Δ`: push the model away from where honest clients take it.
    SignFlip,
    /// Send `factor · Δ` (model replacement / boosting, Bagdasaryan et al. 2020).
    Scale {
        /// The factor, finite.
        factor: f32,
    },
}

impl Attack {
    /// Parses `noise`, `noise:SIGMA`, `sign-flip` or `scale:FACTOR`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, arg) = match text.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (text, None),
        };
        let number = |what: &str| -> Result<f32, String> {
            let arg = arg.ok_or_else(|| format!("`{name}` needs a {what}, as in `{name}:10`"))?;
            let value: f32 = arg.parse().map_err(|_| format!("`{arg}` is not a number"))?;
            if value.is_finite() { Ok(value) } else { Err(format!("the {what} must be finite, got {arg}")) }
        };
        match name {
            "noise" => {
                let std = if arg.is_some() { number("standard deviation")? } else { 1.0 };
                if std > 0.0 { Ok(Attack::Noise { std }) } else { Err(format!("noise needs σ > 0, got {std}")) }
            }
            "sign-flip" if arg.is_none() => Ok(Attack::SignFlip),
            "scale" => Ok(Attack::Scale { factor: number("factor")? }),
            _ => Err(format!("unknown attack `{text}`: use noise[:SIGMA], sign-flip or scale:FACTOR")),
        }
    }

    /// The attack as [`Attack::parse`] reads it.
    pub fn name(&self) -> String {
        match self {
            Attack::Noise { std } => format!("noise:{std}"),
            Attack::SignFlip => "sign-flip".to_owned(),
            Attack::Scale { factor } => format!("scale:{factor}"),
        }
    }

    /// Turns the honest `update` into the malicious one; `seed` drives the noise.
    pub fn apply(&self, update: &mut [f32], seed: u64) {
        match *self {
            Attack::Noise { std } => {
                let normal = Normal::new(0.0, std).expect("σ checked positive and finite");
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                update.iter_mut().for_each(|v| *v = normal.sample(&mut rng));
            }
            Attack::SignFlip => update.iter_mut().for_each(|v| *v = -*v),
            Attack::Scale { factor } => update.iter_mut().for_each(|v| *v *= factor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_attack_and_refuses_nonsense() {
        assert_eq!(Attack::parse("sign-flip"), Ok(Attack::SignFlip));
        assert_eq!(Attack::parse("scale:10"), Ok(Attack::Scale { factor: 10.0 }));
        assert_eq!(Attack::parse("noise"), Ok(Attack::Noise { std: 1.0 }));
        assert_eq!(Attack::parse("noise:0.5"), Ok(Attack::Noise { std: 0.5 }));
        for bad in ["", "flip", "scale", "scale:x", "scale:inf", "noise:0", "noise:-1", "sign-flip:2"] {
            assert!(Attack::parse(bad).is_err(), "{bad:?} parsed");
        }
        for attack in [Attack::SignFlip, Attack::Scale { factor: -3.5 }, Attack::Noise { std: 0.25 }] {
            assert_eq!(Attack::parse(&attack.name()), Ok(attack));
        }
    }

    #[test]
    fn attacks_do_what_they_say() {
        let honest = vec![1.0, -2.0, 0.5];
        let mut flipped = honest.clone();
        Attack::SignFlip.apply(&mut flipped, 0);
        assert_eq!(flipped, vec![-1.0, 2.0, -0.5]);
        let mut scaled = honest.clone();
        Attack::Scale { factor: 10.0 }.apply(&mut scaled, 0);
        assert_eq!(scaled, vec![10.0, -20.0, 5.0]);
        let (mut a, mut b, mut c) = (vec![0.0; 10_000], vec![0.0; 10_000], vec![0.0; 10_000]);
        Attack::Noise { std: 2.0 }.apply(&mut a, 1);
        Attack::Noise { std: 2.0 }.apply(&mut b, 1);
        Attack::Noise { std: 2.0 }.apply(&mut c, 2);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let var = a.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / a.len() as f64;
        assert!((var.sqrt() - 2.0).abs() < 0.1, "σ ≈ {}", var.sqrt());
    }
}
