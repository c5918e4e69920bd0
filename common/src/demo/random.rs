//! Random draws built on IEEE-exact arithmetic only, so wasm32 and native agree bit for bit.

use rand::Rng;
use rand_pcg::Pcg64Mcg;

/// A log-normal factor with median 1.
pub(super) fn lognormal(rng: &mut Pcg64Mcg, sigma: f64) -> f64 {
    math::exp(sigma * standard_normal(rng))
}

/// Marsaglia's polar method: needs only `ln` and `sqrt`.
pub(super) fn standard_normal(rng: &mut Pcg64Mcg) -> f64 {
    loop {
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let v = 2.0 * rng.random::<f64>() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * math::ln(s) / s).sqrt();
        }
    }
}

pub(super) fn exponential(rng: &mut Pcg64Mcg, mean: f64) -> f64 {
    -mean * math::ln(1.0 - rng.random::<f64>())
}

/// `exp` and `ln` from IEEE-exact operations only, so every platform computes the same
/// bits. Accurate to a few ulps, which is plenty for a simulation.
pub(super) mod math {
    use std::f64::consts::{LN_2, SQRT_2};

    /// Natural logarithm of a positive, finite, normal `x`.
    pub fn ln(x: f64) -> f64 {
        debug_assert!(x >= f64::MIN_POSITIVE && x.is_finite(), "ln({x})");
        // x = m · 2^e with m in [√½, √2), then ln m = 2 atanh((m − 1)/(m + 1)).
        let bits = x.to_bits();
        let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
        if m > SQRT_2 {
            m /= 2.0;
            e += 1;
        }
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let (mut term, mut sum) = (s, 0.0);
        for k in 0..12 {
            sum += term / f64::from(2 * k + 1);
            term *= s2;
        }
        2.0 * sum + e as f64 * LN_2
    }

    /// e^x, for |x| up to 700.
    pub fn exp(x: f64) -> f64 {
        let x = x.clamp(-700.0, 700.0);
        // x = k ln 2 + r with |r| ≤ ½ ln 2, then e^x = 2^k · e^r.
        // ln 2 in two parts (fdlibm's): k · LN2_HI is exact, so r keeps its precision.
        const LN2_HI: f64 = 6.931_471_803_691_238e-1;
        const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
        let k = (x / LN_2).round();
        let r = (x - k * LN2_HI) - k * LN2_LO;
        let (mut term, mut sum) = (1.0, 1.0);
        for n in 1..16 {
            term *= r / f64::from(n);
            sum += term;
        }
        sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
    }
}
