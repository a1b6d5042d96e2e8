//! The randomness seam: [`Random`], what branches, tags and Call-IDs are drawn from. The
//! crate never reads a global generator; the caller passes one in.

/// A source of unguessable bytes (RFC 3261 §8.1.1.4, §19.3 ask for cryptographically random
/// identifiers).
///
/// Usable without `std`: implement it over whatever the platform offers. Every
/// [`rand::RngCore`] (`rand`'s `StdRng`, `ThreadRng`, …) is a `Random` already; with the
/// `std` feature [`SystemRandom`] is a ready one seeded from the operating system.
///
/// ```
/// use sip_parser::{Ident, Random};
/// /// A fixed source, as a test would use (never in production).
/// struct Counter(u8);
/// impl Random for Counter {
///     fn fill(&mut self, buf: &mut [u8]) {
///         for b in buf {
///             self.0 = self.0.wrapping_add(1);
///             *b = self.0;
///         }
///     }
/// }
/// let tag = Ident::tag(&mut Counter(0));
/// assert_eq!(tag.as_str(), "BCDEFGHIJKLMNOPQ");
/// ```
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<R: rand::RngCore + ?Sized> Random for R {
    fn fill(&mut self, buf: &mut [u8]) {
        self.fill_bytes(buf);
    }
}

/// A cryptographically secure generator (`rand`'s `StdRng`, ChaCha12) seeded once from the
/// operating system's entropy source (`std` only). Cheap per call; keep one per thread (it
/// is `Send`, not shared).
///
/// ```
/// use sip_parser::{Ident, SystemRandom};
/// let mut rng = SystemRandom::new();
/// let (a, b) = (Ident::branch(&mut rng), Ident::branch(&mut rng));
/// assert!(a.starts_with("z9hG4bK"));
/// assert_ne!(a, b);
/// ```
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct SystemRandom(rand::rngs::StdRng);

#[cfg(feature = "std")]
impl SystemRandom {
    /// A generator seeded from the operating system.
    ///
    /// # Panics
    /// When the operating system has no entropy source to offer (`getrandom` fails), as
    /// `rand` does.
    pub fn new() -> Self {
        use rand::SeedableRng;
        Self(rand::rngs::StdRng::from_os_rng())
    }
}

#[cfg(feature = "std")]
impl Default for SystemRandom {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl rand::RngCore for SystemRandom {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst);
    }
}
