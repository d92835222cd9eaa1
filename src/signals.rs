//! Signals: what SIGINT, SIGTERM and SIGHUP do to a slipway process, and the
//! cancellation token through which a command learns of one.
//!
//! [`install`] starts a thread that waits for those signals; the CLI calls it
//! before it takes its first lock. A signal releases every lock the process
//! holds ([`crate::state::lock::release_held_locks`]) and exits with 128 + the
//! signal number, as the default action would have; a second signal during
//! the release exits at once.
//!
//! While a command holds a [`Graceful`] guard ([`graceful`]), the first signal
//! instead cancels the guard's [`Cancel`] token and says so on stderr. Apply
//! takes that token as an input (`ApplyOptions::cancel`): it starts no new
//! step, records the steps in flight and releases its locks itself. A second
//! signal releases the locks and exits at once.
//!
//! Not here: what a cancelled command does (the executors read their token,
//! never a global), and the registry of held locks (`state::lock`, which knows
//! nothing of signals).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A request to stop starting new work: cloneable, and cancelled at most once.
/// Made by a command and handed to the code that stops on it; a signal
/// cancels it while its [`Graceful`] guard is held.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token not cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancel it; `true` when this call did (it was not cancelled before).
    pub fn cancel(&self) -> bool {
        !self.0.swap(true, Ordering::SeqCst)
    }

    /// Whether it was cancelled: start nothing new.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The token the first signal cancels, while a [`Graceful`] guard holds it.
static GRACEFUL: Mutex<Option<Cancel>> = Mutex::new(None);

/// Graceful mode: while this guard lives, the first SIGINT, SIGTERM or SIGHUP
/// cancels its token instead of exiting. Dropping it ends graceful mode (the
/// token stays as it is).
#[must_use = "graceful mode ends as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Graceful {
    /// The token of an enclosing guard, registered again on drop.
    previous: Option<Cancel>,
}

/// Until the returned guard is dropped, the first SIGINT, SIGTERM or SIGHUP
/// cancels `cancel` and says so on stderr, and the caller stops in order and
/// releases its locks; a second one releases every held lock and exits.
/// Installs the handler if it is not yet.
pub fn graceful(cancel: &Cancel) -> Graceful {
    install();
    let previous = graceful_slot().replace(cancel.clone());
    Graceful { previous }
}

impl Drop for Graceful {
    fn drop(&mut self) {
        *graceful_slot() = self.previous.take();
    }
}

fn graceful_slot() -> std::sync::MutexGuard<'static, Option<Cancel>> {
    GRACEFUL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A signal arrived: `true` when it only cancelled the token of graceful mode
/// (the first one while a guard is held), `false` when the process must exit.
fn cancelled_gracefully() -> bool {
    graceful_slot().as_ref().is_some_and(Cancel::cancel)
}

/// Start waiting for SIGINT, SIGTERM and SIGHUP, once per process: on one,
/// release every held lock, then exit with 128 + the signal number, as the
/// default action would have (see [`graceful`] for the exception). Returns
/// once the handlers are registered, so a lock taken afterwards is released
/// on a signal.
#[cfg(unix)]
pub fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let (ready, registered) = std::sync::mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("slipway-signals".to_string())
            .spawn(move || handle_signals(ready));
        if spawned.is_ok() {
            // The handlers are registered before the first lock is taken.
            let _ = registered.recv();
        }
    });
}

#[cfg(not(unix))]
pub fn install() {}

/// The signal thread: register the handlers, say so, wait for a signal.
#[cfg(unix)]
fn handle_signals(ready: std::sync::mpsc::SyncSender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        let signals = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        let _ = ready.send(());
        let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = signals else {
            return;
        };
        let code = loop {
            let code = tokio::select! {
                _ = interrupt.recv() => 130,
                _ = terminate.recv() => 143,
                _ = hangup.recv() => 129,
            };
            if cancelled_gracefully() {
                eprintln!(
                    "\nInterrupted: no new step starts; the steps in flight finish and are \
                     recorded, then the lock is released. Interrupt again to stop at once."
                );
                continue;
            }
            break code;
        };
        let (done, mut finished) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            for (info, result) in crate::state::lock::release_held_locks() {
                match result {
                    Ok(()) => eprintln!(
                        "\nInterrupted: released the state lock of environment {} (lock id {}).",
                        info.environment, info.id
                    ),
                    Err(error) => eprintln!(
                        "\nInterrupted: could not release the state lock of environment {}: \
                         {error}",
                        info.environment
                    ),
                }
            }
            let _ = done.send(());
        });
        // A second signal while releasing exits at once.
        tokio::select! {
            _ = &mut finished => {}
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        std::process::exit(code);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_cancelled_once_and_its_clones_see_it() {
        let cancel = Cancel::new();
        let clone = cancel.clone();
        assert!(!clone.is_cancelled());
        assert!(cancel.cancel(), "the first cancel cancels");
        assert!(!clone.cancel(), "a second one finds it cancelled");
        assert!(cancel.is_cancelled() && clone.is_cancelled());
    }

    /// The only test that enters graceful mode: the mode is per process.
    #[test]
    fn only_the_first_signal_in_graceful_mode_is_absorbed_by_the_token() {
        assert!(!cancelled_gracefully(), "outside graceful mode: exit");
        let cancel = Cancel::new();
        let guard = graceful(&cancel);
        assert!(cancelled_gracefully(), "the first signal cancels");
        assert!(cancel.is_cancelled());
        assert!(!cancelled_gracefully(), "the second one exits");
        drop(guard);
        assert!(!cancelled_gracefully(), "after the guard: exit");
        assert!(cancel.is_cancelled(), "the token stays cancelled");

        let outer = Cancel::new();
        let inner = Cancel::new();
        let outer_guard = graceful(&outer);
        drop(graceful(&inner));
        assert!(cancelled_gracefully(), "the enclosing guard's token");
        assert!(outer.is_cancelled() && !inner.is_cancelled());
        drop(outer_guard);
    }
}
