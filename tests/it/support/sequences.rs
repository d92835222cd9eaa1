//! What the random operation-sequence tests (`vm_sequences`, `ecs_sequences`)
//! share: a small seedable generator and how a run is chosen
//! (`SLIPWAY_SEQ_SEED` replays a printed seed, `SLIPWAY_SEQ_SECONDS` bounds
//! the run).

use std::time::Duration;

/// splitmix64: small, seedable, the same everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// The first seed (`SLIPWAY_SEQ_SEED`, else from the clock) and how long to
/// run (`SLIPWAY_SEQ_SECONDS`, else `default_seconds`).
pub fn run_settings(default_seconds: u64) -> (u64, Duration) {
    let seconds: u64 = std::env::var("SLIPWAY_SEQ_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default_seconds);
    let seed = match std::env::var("SLIPWAY_SEQ_SEED") {
        Ok(text) => text.trim().parse().expect("SLIPWAY_SEQ_SEED is a number"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            Rng(nanos ^ u64::from(std::process::id())).next()
        }
    };
    (seed, Duration::from_secs(seconds))
}
