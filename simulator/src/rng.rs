//! A tiny deterministic random number generator (SplitMix64), owned by this crate so that a
//! racer's name, ability and ride depend on nothing that a dependency upgrade could change.
//!
//! Only integer and basic floating-point arithmetic is used (no `sin`, `ln` or `sqrt`, whose
//! results may differ between platforms' math libraries), so one seed gives byte-identical
//! messages everywhere.

/// SplitMix64's finaliser: a strong 64-bit mixing function.
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes a key and a value into a new key: how a seed is derived per racer, per purpose.
pub const fn derive(key: u64, value: u64) -> u64 {
    mix(key ^ mix(value.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// A SplitMix64 stream.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    #[allow(clippy::cast_precision_loss)] // 53 bits convert exactly.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in `0..n` (`n` > 0), by Lemire's multiply-shift (bias below 2^-32 for the
    /// small `n` used here).
    #[allow(clippy::cast_possible_truncation)] // The high half of a 64x64 product fits in u64.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Approximately standard normal (Irwin-Hall: the sum of 4 uniforms, rescaled): mean 0,
    /// variance 1, bounded to about ±3.5, which suits noise that must stay within bounds.
    pub fn normal(&mut self) -> f64 {
        let sum = self.unit() + self.unit() + self.unit() + self.unit();
        // Var of one uniform is 1/12, of four 1/3: scale by sqrt(3).
        (sum - 2.0) * 1.732_050_807_568_877_2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_seed_dependent() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut one = Rng::new(7);
        let mut two = Rng::new(8);
        assert_ne!(one.next_u64(), two.next_u64());
        // Pinned: names and rides must not change silently between versions.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn distributions_stay_in_range() {
        let mut rng = Rng::new(42);
        let mut sum = 0.0;
        let mut squares = 0.0;
        for _ in 0..100_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.below(10) < 10);
            let r = rng.range(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&r));
            let n = rng.normal();
            assert!(n.abs() <= 3.5);
            sum += n;
            squares += n * n;
        }
        let mean = sum / 100_000.0;
        let variance = squares / 100_000.0 - mean * mean;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.03, "variance {variance}");
    }
}
