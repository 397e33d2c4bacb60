//! Adler-32, the checksum ZooKeeper puts on its snapshots (`CheckedOutputStream` over
//! `java.util.zip.Adler32`) and on each transaction-log record.

/// The Adler-32 modulus (the largest prime below 2^16).
const MOD: u32 = 65_521;
/// Bytes that can be summed before the 32-bit sums must be reduced.
const BLOCK: usize = 5_552;

/// A running Adler-32, as `java.util.zip.Adler32`: starts at 1, `update` with bytes,
/// `value` at any point.
#[derive(Debug, Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    /// A checksum of nothing yet (value 1).
    pub fn new() -> Adler32 {
        Adler32::default()
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for block in bytes.chunks(BLOCK) {
            for &byte in block {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= MOD;
            self.b %= MOD;
        }
    }

    /// The checksum of everything added so far.
    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// The Adler-32 of `bytes`.
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut sum = Adler32::new();
    sum.update(bytes);
    sum.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_values() {
        // java.util.zip.Adler32 (and zlib): 1 for nothing, 0x11E60398 for "Wikipedia".
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b"abc"), 0x024D_0127);
    }

    #[test]
    fn incremental_equals_one_shot_across_reduction_blocks() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + 3) as u8 | 0x80).collect();
        let mut sum = Adler32::new();
        for piece in data.chunks(777) {
            sum.update(piece);
        }
        assert_eq!(sum.value(), adler32(&data));
        // All 0xff bytes: the worst case for overflow between reductions.
        let ff = vec![0xffu8; 100_000];
        let mut naive_a: u64 = 1;
        let mut naive_b: u64 = 0;
        for &b in &ff {
            naive_a = (naive_a + u64::from(b)) % u64::from(MOD);
            naive_b = (naive_b + naive_a) % u64::from(MOD);
        }
        assert_eq!(adler32(&ff), ((naive_b << 16) | naive_a) as u32);
    }
}
