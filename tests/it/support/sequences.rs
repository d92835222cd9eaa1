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

/// One random operation sequence on a test bed of its own: what
/// [`run`] drives.
pub trait OperationSequence: Sized {
    type Op;
    /// A fresh test bed for `seed`; `None` when one of its real components
    /// is missing and the test is skipped.
    fn start(seed: u64) -> Option<Self>;
    /// The operation every sequence begins with (a first deployment).
    fn first(&mut self) -> Self::Op;
    /// The next operation, picked at random.
    fn choose(&mut self) -> Self::Op;
    /// Run `op`, then check every rule against the bed itself.
    fn step(&mut self, op: Self::Op) -> Result<(), String>;
    /// A last deployment that must converge.
    fn converge(&mut self) -> Result<(), String>;
    /// The operations run so far.
    fn steps_taken(&self) -> usize;
    /// Fail the test with `error`, the seed and the operations that led to it.
    fn fail(&self, error: &str) -> !;
}

/// Run sequences of `S` for the time [`run_settings`] chooses (at least one,
/// of at least six operations), each of up to `steps_per_sequence`
/// operations and a converging deployment, seeds following the first.
pub fn run<S: OperationSequence>(what: &str, default_seconds: u64, steps_per_sequence: usize) {
    let (mut seed, run_for) = run_settings(default_seconds);
    let seconds = run_for.as_secs();
    eprintln!("{what} operation sequences: first seed {seed} (SLIPWAY_SEQ_SEED), {seconds}s");
    let deadline = std::time::Instant::now() + run_for;
    let (mut sequences, mut steps) = (0, 0);
    while sequences == 0 || std::time::Instant::now() < deadline {
        let Some(mut sequence) = S::start(seed) else {
            return;
        };
        let first = sequence.first();
        if let Err(error) = sequence.step(first) {
            sequence.fail(&error);
        }
        for _ in 0..steps_per_sequence {
            // Past the time: stop (the first sequence after a few steps).
            if std::time::Instant::now() >= deadline
                && (sequences > 0 || sequence.steps_taken() >= 6)
            {
                break;
            }
            let op = sequence.choose();
            if let Err(error) = sequence.step(op) {
                sequence.fail(&error);
            }
        }
        if let Err(error) = sequence.converge() {
            sequence.fail(&error);
        }
        steps += sequence.steps_taken();
        sequences += 1;
        eprintln!(
            "sequence {sequences} (seed {seed}): {} steps, all invariants held",
            sequence.steps_taken()
        );
        seed = Rng(seed).next();
    }
    eprintln!(
        "{what} operation sequences: {sequences} sequences, {steps} steps in {seconds}s or less"
    );
}
