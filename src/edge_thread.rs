//! A named OS thread for an edge that must not share the async workers (MIDI clock out, Link):
//! a stop flag the thread polls, a stop that waits at most a deadline, and real-time scheduling
//! where the system grants it.
//!
//! Why real-time: the MIDI clock thread sleeps to each pulse (every 20.8 ms at 120 BPM). At normal
//! priority on a loaded machine the kernel wakes it late and pulses bunch (p99 20 ms deviation
//! measured with a build running beside it, docs/performance.md); `SCHED_FIFO` wakes it on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running edge thread; dropping it asks the thread to stop without waiting.
pub(crate) struct EdgeThread {
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// Signals the end of the thread's body, however it ends (return or panic).
struct DoneOnDrop(SyncSender<()>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

impl EdgeThread {
    /// Starts `body` on a thread called `name`; `body` returns once the flag it gets is set.
    pub(crate) fn spawn<F>(name: &str, body: F) -> std::io::Result<EdgeThread>
    where
        F: FnOnce(&AtomicBool) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = std::sync::mpsc::sync_channel(1);
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _done = DoneOnDrop(done_tx);
                body(&flag);
            })?;
        Ok(EdgeThread {
            stop,
            done,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop and waits at most `deadline`; false when it did not end in time
    /// (it is then abandoned, not joined).
    pub(crate) fn stop_within(mut self, deadline: Duration) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        match self.done.recv_timeout(deadline) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for EdgeThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Scheduling the calling thread got from [`promote_to_realtime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheduling {
    /// `SCHED_FIFO` at this priority.
    Realtime(u8),
    /// The normal time-sharing scheduler (real-time was refused).
    Normal,
}

/// Asks for `SCHED_FIFO` at `priority` (1–99) for the calling thread. Refused without the
/// privilege (an `rtprio` limit, e.g. `@audio - rtprio 95` in /etc/security/limits.d, or
/// CAP_SYS_NICE): then the thread stays normal and the refusal is logged once, with the fix.
pub(crate) fn promote_to_realtime(what: &str, priority: u8) -> Scheduling {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let value = match ThreadPriorityValue::try_from(priority.clamp(1, 99)) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(
                thread = what,
                "real-time priority {priority} not valid: {e}"
            );
            return Scheduling::Normal;
        }
    };
    match set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    ) {
        Ok(()) => {
            tracing::info!(thread = what, priority, "real-time scheduling (SCHED_FIFO)");
            Scheduling::Realtime(priority)
        }
        Err(e) => {
            tracing::warn!(
                thread = what,
                "real-time scheduling refused ({e:?}); it runs at normal priority and can be \
                 late under CPU load. Grant an rtprio limit (e.g. `@audio - rtprio 95` in \
                 /etc/security/limits.d/ and the user in group audio) to fix"
            );
            Scheduling::Normal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_within_returns_once_the_body_sees_the_flag() {
        let t = EdgeThread::spawn("test-edge", |stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(1));
            }
        })
        .expect("spawn");
        assert!(t.stop_within(Duration::from_secs(5)));
    }

    #[test]
    fn a_body_that_ignores_the_flag_is_reported_stuck() {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let t = EdgeThread::spawn("test-stuck", move |_| {
            let _ = release_rx.recv();
        })
        .expect("spawn");
        assert!(!t.stop_within(Duration::from_millis(50)));
        drop(release_tx);
    }

    #[test]
    fn a_panicking_body_counts_as_stopped() {
        let t = EdgeThread::spawn("test-panic", |_| panic!("edge body failed")).expect("spawn");
        assert!(t.stop_within(Duration::from_secs(5)));
    }
}
