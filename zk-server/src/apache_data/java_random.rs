//! `java.util.Random`'s generator, and the session passwords ZooKeeper derives with it.
//!
//! ZooKeeper does not store session passwords: `ZooKeeperServer.generatePasswd` makes
//! a session's 16-byte password from a `java.util.Random` seeded with the session id
//! XOR a fixed secret, whenever it needs it. Deriving them the same way lets a client
//! connected to Apache ZooKeeper before a cut-over resume its session on ours.

/// `ZooKeeperServer.superSecret` (ZooKeeper 3.4 to 3.9).
pub const SUPER_SECRET: i64 = 0xB341_5C00;

/// The bytes of a session password.
pub const PASSWORD_LEN: usize = 16;

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const ADDEND: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

/// `java.util.Random`: a 48-bit linear congruential generator.
#[derive(Debug, Clone)]
pub struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    /// `new Random(seed)`.
    pub fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    /// `next(bits)`: the top `bits` of the next state.
    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND)) & MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// `nextInt()`.
    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    /// `nextBytes(bytes)`: each `nextInt()` fills four bytes, low byte first.
    pub fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let mut rnd = self.next_int();
            for byte in chunk {
                *byte = rnd as u8;
                rnd >>= 8;
            }
        }
    }
}

/// The password Apache ZooKeeper gives session `session_id`
/// (`ZooKeeperServer.generatePasswd`).
pub fn session_password(session_id: i64) -> [u8; PASSWORD_LEN] {
    let mut random = JavaRandom::new(session_id ^ SUPER_SECRET);
    let mut password = [0u8; PASSWORD_LEN];
    random.next_bytes(&mut password);
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    // Produced by Java 17 itself (java.util.Random, and ZooKeeper 3.8's own
    // ZooKeeperServer.generatePasswd called by reflection); the integration test
    // `session_passwords_match_zookeepers_own` re-derives more with javac and java.
    #[test]
    fn random_matches_java() {
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next_int(), -1_170_105_035);
        assert_eq!(r.next_int(), 234_785_527);
        let mut r = JavaRandom::new(0);
        assert_eq!(r.next_int(), -1_155_484_576);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn session_password_matches_zookeeper() {
        assert_eq!(
            hex(&session_password(0x0100_0000_0000_0001)),
            "054cc74a37327db215e702e20c73f005"
        );
        assert_eq!(
            hex(&session_password(0x0100_00ab_cdef_0042)),
            "0395396c72c8f1b8ddb2ca365eb472ad"
        );
        assert_eq!(
            hex(&session_password(-5)),
            "d47144b5e45e45c49c3b7fdcd66257ba"
        );
    }
}
