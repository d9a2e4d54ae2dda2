//! The few distributions the generator draws from, on `fastrand` (fast, seedable, same stream on
//! every platform, so one seed gives the same bytes everywhere).

/// Convenience draws on a [`fastrand::Rng`].
pub(crate) trait RngExt {
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool;
    /// Uniform in `[lo, hi)`.
    fn f64_in(&mut self, lo: f64, hi: f64) -> f64;
    /// Standard normal.
    fn normal(&mut self) -> f64;
    /// Poisson with mean `lambda` (normal approximation above 30).
    fn poisson(&mut self, lambda: f64) -> u32;
    /// An index drawn with the given weights (all zero: uniform).
    fn weighted(&mut self, weights: &[u16]) -> usize;
}

impl RngExt for fastrand::Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    fn f64_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.f64() * (hi - lo)
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller; 1 - f64() is in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.f64();
        let v = self.f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u32;
        }
        // Knuth: multiply uniforms until the product drops below e^-λ.
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.f64();
        while p > limit {
            k += 1;
            p *= self.f64();
        }
        k
    }

    fn weighted(&mut self, weights: &[u16]) -> usize {
        let total: u32 = weights.iter().map(|w| u32::from(*w)).sum();
        if total == 0 {
            return self.usize(0..weights.len().max(1));
        }
        let mut pick = self.u32(0..total);
        for (i, w) in weights.iter().enumerate() {
            let w = u32::from(*w);
            if pick < w {
                return i;
            }
            pick -= w;
        }
        weights.len() - 1
    }
}

/// Log-normal with the given median and shape `sigma`.
pub(crate) fn lognormal(rng: &mut fastrand::Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * rng.normal()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_and_weighted_have_the_right_means() {
        let mut rng = fastrand::Rng::with_seed(1);
        for lambda in [0.1, 3.0, 25.0, 400.0] {
            let n = 20_000;
            let mean = (0..n).map(|_| f64::from(rng.poisson(lambda))).sum::<f64>() / f64::from(n);
            assert!((mean - lambda).abs() < 0.05 * lambda + 0.02, "{lambda}: {mean}");
        }
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[rng.weighted(&[1, 0, 2])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[2] as f64 / counts[0] as f64 - 2.0).abs() < 0.15);
    }
}
