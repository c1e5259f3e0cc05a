//! One process-wide lock around every midir client open and close.
//!
//! Why: midir's JACK backend does nothing to keep one thread's client open from overlapping
//! another thread's client close (rust-jack guards both with its `CREATE_OR_DESTROY_CLIENT_MUTEX`
//! for that reason), and libjack (jack2) itself serialises only `jack_client_open` and
//! `jack_client_close`, not the activation, port registration and connection that follow an
//! open or the port unregistration and deactivation that precede a close. A `midi_jack` run under
//! load hung with the MIDI edge's port thread in `jack_client_close` (dropping a
//! `MidiInputConnection` after the edge was cancelled) and the test thread in `MidiOutput::new`
//! → `jack_client_open`, each in `pthread_mutex_lock` inside libjack. In the deck two threads own
//! midir clients (the port thread and the clock-out thread), so a controller unplugged while the
//! clock output rescans does the same. With this lock no two of the process's own client
//! lifetimes change at once.
//!
//! The rule: every midir client is created under [`lock`] ([`Guarded::open`]) and held in a
//! [`Guarded`], whose drop closes it under the lock. That covers probes, connections, virtual
//! ports and the `MidiInput`/`MidiOutput` a failed `connect` hands back inside its error (it is
//! dropped inside [`Guarded::open`], still under the lock). ALSA does not need it but is
//! serialised too: a few client opens per hot-plug cost nothing.
//!
//! The lock is only ever taken by a thread that opens or closes a client — never in a JACK or
//! ALSA callback (the input callbacks only parse and `try_send`), and never held across a sleep
//! or a channel wait. Sending on an open connection does not take it.
//!
//! Not fixed by it, and fixed instead in our patched copy of midir (`vendor/midir`, see its
//! `SCOPE-DECK-PATCH.md`): midir 0.11.1's JACK backend drops a connection by unregistering its
//! port (`handler_data.port.take()` + `jack_port_unregister`) *before* `jack_deactivate`. While
//! the client is still active, libjack's notification thread for that client may be walking the
//! client's port list (`JackClient::HandleLatencyCallback`, run on every graph change) as
//! `jack_port_unregister` removes the entry from it: a core dump of a `midi_jack` run that crashed
//! (SIGSEGV) with this lock in place showed the port thread in that `jack_port_unregister`
//! (dropping an input connection at shutdown) and a libjack thread dying in a walk over a list
//! inside its client object (Debian's libjack has no symbols, so the name is inferred from jack2's
//! source). A lock of ours cannot reach a libjack thread; the patch deactivates before
//! unregistering, and deactivates a client whose `connect` fails before midir frees the process
//! callback's data. The lock stays: it is what stopped the open/close deadlock above.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The lock itself: held while a midir client is opened or closed, nothing else.
static CLIENT_LIFETIMES: Mutex<()> = Mutex::new(());

/// Takes the client lock. A poisoned lock is still a lock (a panic while opening a client leaves
/// no state behind it to protect), so poisoning is ignored.
pub fn lock() -> MutexGuard<'static, ()> {
    CLIENT_LIFETIMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A midir object (`MidiInput`, `MidiOutput`, `MidiInputConnection<T>`, `MidiOutputConnection`)
/// whose drop — which closes its backend client — runs under [`lock`]. Derefs to the object, so
/// `send`, `ports`, `port_name` work as before.
pub struct Guarded<T> {
    /// Always `Some` except inside `drop`, which takes it out to drop it under the lock.
    inner: Option<T>,
}

impl<T> Guarded<T> {
    /// Runs `open` (midir `new`, `connect`, `create_virtual`, or several of them) under the lock
    /// and guards what it returns. The error is turned into text while the lock is still held:
    /// midir's `ConnectError` carries the `MidiInput`/`MidiOutput` back, and dropping it closes
    /// that client.
    pub fn open<E: std::fmt::Display>(
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<Guarded<T>, String> {
        let _held = lock();
        open()
            .map(|inner| Guarded { inner: Some(inner) })
            .map_err(|e| e.to_string())
    }
}

impl<T> Deref for Guarded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.inner {
            Some(inner) => inner,
            None => unreachable!("a Guarded is only empty inside its own drop"),
        }
    }
}

impl<T> DerefMut for Guarded<T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.inner {
            Some(inner) => inner,
            None => unreachable!("a Guarded is only empty inside its own drop"),
        }
    }
}

impl<T> Drop for Guarded<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _held = lock();
            drop(inner);
        }
    }
}

impl<T> std::fmt::Debug for Guarded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guarded(midir client)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Records whether the client lock was held when it was dropped.
    struct Probe(mpsc::Sender<bool>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.send(CLIENT_LIFETIMES.try_lock().is_err());
        }
    }

    #[test]
    fn drop_and_failed_open_run_under_the_lock() {
        let (tx, rx) = mpsc::channel();
        let g = Guarded::open(|| Ok::<_, String>(Probe(tx.clone()))).unwrap();
        drop(g);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        // An error carrying a client back (as midir's `ConnectError` does) drops it locked.
        struct CarriesClient(#[allow(dead_code)] Probe);
        impl std::fmt::Display for CarriesClient {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("could not connect")
            }
        }
        let err = Guarded::<()>::open(|| Err(CarriesClient(Probe(tx.clone())))).unwrap_err();
        assert_eq!(err, "could not connect");
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
    }
}
