//! SIGINT, SIGTERM and SIGHUP become messages, so every way out goes through the same orderly
//! shutdown as `q`.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::msg::{Msg, StopSignal};
use crate::transport::types::TransportCmd;

/// Forwards stop signals to the engine until cancelled. With `hangup_stops` false a SIGHUP is
/// logged and ignored (`serve`: an SSH session that started the deck and dropped must not end
/// the show).
pub(crate) async fn forward_with(
    inputs: mpsc::Sender<Msg>,
    cancel: CancellationToken,
    hangup_stops: bool,
) {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot install signal handlers; only the quit key will stop scope-deck");
        return;
    };
    loop {
        let sig = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = int.recv() => StopSignal::Interrupt,
            _ = term.recv() => StopSignal::Terminate,
            _ = hup.recv() => StopSignal::Hangup,
        };
        tracing::info!(?sig, "signal received");
        if sig == StopSignal::Hangup && !hangup_stops {
            tracing::info!("SIGHUP ignored: the deck is serving; the show goes on");
            continue;
        }
        if inputs.send(Msg::Signal(sig)).await.is_err() {
            return;
        }
    }
}

/// Used when the front end died: tell the transport goodbye directly (a flag that cannot be
/// lost to a full lane).
pub(crate) fn request_stop(link: &crate::transport::lanes::TransportLink) {
    let _ = link.send(TransportCmd::Shutdown);
}
