//! A tiny deterministic random generator for the kernels' property tests (no dependency).

/// xorshift64: the same sequence on every platform; seed with any non-zero value.
pub struct TestRng(pub u64);

impl TestRng {
    /// Uniform-enough in `0..n`; `n > 0`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
