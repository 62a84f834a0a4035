//! Deterministic randomness: everything the simulator "chooses" (generated objects, empty
//! pages, which Intune throttles omit `Retry-After`, token lifetimes) derives from the
//! configured seed, so a failing test or a benchmark replays exactly.

use std::hash::{DefaultHasher, Hash, Hasher};

/// SplitMix64: tiny and statistically good enough for test data. Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A stream for one purpose (`label`) under one seed; different labels give unrelated
    /// streams, so adding a collection does not reshuffle the others.
    pub(crate) fn derive(seed: u64, label: &str) -> Self {
        Rng(mix(seed, fnv1a(label)))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalize(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        unit(self.next_u64()) < probability
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let index = self.below(items.len() as u64) as usize;
        items.get(index).copied().unwrap_or_default()
    }

    /// A version-4 GUID in Microsoft's lowercase textual form.
    pub(crate) fn guid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Maps a hash to `[0, 1)`.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn mix(a: u64, b: u64) -> u64 {
    finalize(a ^ finalize(b.wrapping_add(0x9E37_79B9_7F4A_7C15)))
}

/// A stable string hash (FNV-1a): labels and paths must hash the same in every process,
/// which `DefaultHasher` does not promise across Rust versions.
pub(crate) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A keyed checksum for the opaque tokens the simulator hands out (skip and delta tokens):
/// enough to detect tampering in tests, not a MAC.
pub(crate) fn keyed_checksum(key: u64, bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    bytes.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_label_specific() {
        let mut a = Rng::derive(7, "groups");
        let mut b = Rng::derive(7, "groups");
        let mut c = Rng::derive(7, "users");
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn guids_look_like_v4() {
        let g = Rng::derive(1, "g").guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.as_bytes()[14], b'4');
        assert!(matches!(g.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }
}
