//! Reproducible choices, in a few lines of well-known arithmetic: SplitMix64, the one seeded
//! PRNG (ALS initialisation, benchmarks, simulations, synthetic fixtures), and FNV-1a, the one
//! stable hash (kids accounts at import, model version names, GrowthBook bucketing). Neither
//! is for anything secret.

#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// FNV-1a, 32 bit, over a sequence of code units: bytes (`s.bytes()`), or UTF-16 units where
/// a hash must agree with JavaScript's (GrowthBook). Stable across platforms and releases.
pub fn fnv1a32<U: Into<u32>>(units: impl IntoIterator<Item = U>) -> u32 {
    units.into_iter().fold(0x811c_9dc5_u32, |h, unit| {
        (h ^ unit.into()).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference (isthe.com/chongo/tech/comp/fnv): "" and "a", 32-bit FNV-1a.
        assert_eq!(fnv1a32("".bytes()), 0x811c_9dc5);
        assert_eq!(fnv1a32("a".bytes()), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar".bytes()), 0xbf9c_f968);
    }
}
