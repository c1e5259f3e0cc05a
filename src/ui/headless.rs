//! Headless front end: JSON-lines actions on stdin, JSON-lines events on stdout, nothing else on
//! stdout. Scripts and tests drive the whole engine through it. Lines are length-limited,
//! internal actions are refused, every event carries `t` (docs/service.md), and the process
//! stops when stdout's reader goes away.

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::action::ActionSource;
use crate::core::effect::Event;
use crate::core::msg::{Msg, StopSignal};
use crate::service::protocol::{self, DeckClock, Line, LineReader};

/// Parses one input line into a message (blank lines and `#` comments are skipped).
pub fn parse_line(line: &str, lineno: usize) -> Option<Msg> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    Some(match protocol::external_action(t) {
        Ok(action) => Msg::Action {
            action,
            source: ActionSource::Script,
        },
        Err(e) => Msg::BadInput(format!("stdin line {lineno}: {e}")),
    })
}

/// What an unreadable line becomes (too long, not UTF-8): an error naming it; reading goes on.
fn bad_line(line: Line, lineno: usize) -> Option<Msg> {
    match line {
        Line::Text(t) => parse_line(&t, lineno),
        Line::TooLong(len) => Some(Msg::BadInput(format!(
            "stdin line {lineno}: {len} bytes, longer than {} (skipped)",
            protocol::MAX_LINE
        ))),
        Line::NotUtf8 => Some(Msg::BadInput(format!(
            "stdin line {lineno}: not UTF-8 (skipped)"
        ))),
    }
}

/// Reads stdin until EOF or cancellation; EOF asks the engine to stop.
pub(crate) async fn read_stdin(inputs: mpsc::Sender<Msg>, cancel: CancellationToken) {
    let mut lines = LineReader::new(BufReader::new(tokio::io::stdin()), protocol::MAX_LINE);
    let mut n = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            line = lines.next_line() => match line {
                Ok(Some(l)) => {
                    n += 1;
                    if let Some(m) = bad_line(l, n) {
                        if inputs.send(m).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = inputs.send(Msg::Signal(StopSignal::InputClosed)).await;
                    return;
                }
            }
        }
    }
}

/// Lines stamped but not yet written before the stamper starts dropping (counted in the log).
const OUT_QUEUE: usize = 4096;

/// Writes events to stdout, one JSON object per line with its time `t`, until the channel
/// closes. Events are stamped as they leave the engine's queue, not when stdout takes them,
/// so a slow reader does not skew the times. When stdout's reader goes away (EPIPE) the deck
/// is asked to stop: nobody hears it any more.
pub(crate) async fn write_stdout(
    mut events: mpsc::Receiver<Event>,
    clock: DeckClock,
    inputs: mpsc::Sender<Msg>,
) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    let stamper = tokio::spawn(async move {
        let mut dropped = 0u64;
        while let Some(ev) = events.recv().await {
            if tx.try_send(protocol::event_line(&ev, clock.t())).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "headless events dropped (stdout not read fast enough)"
            );
        }
    });
    let mut out = tokio::io::stdout();
    while let Some(line) = rx.recv().await {
        if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
            tracing::info!("stdout closed by its reader; stopping");
            let _ = inputs.send(Msg::Signal(StopSignal::OutputClosed)).await;
            // Keep draining so the engine never sees a closed queue while it shuts down.
            while rx.recv().await.is_some() {}
            break;
        }
    }
    let _ = stamper.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::action::Action;

    #[test]
    fn parses_actions_skips_blanks_and_reports_bad_lines() {
        assert_eq!(parse_line("  ", 1), None);
        assert_eq!(parse_line("# note", 2), None);
        assert_eq!(
            parse_line(r#"{"action":"quit"}"#, 3),
            Some(Msg::Action {
                action: Action::Quit,
                source: ActionSource::Script
            })
        );
        match parse_line(r#"{"action":"fly"}"#, 4) {
            Some(Msg::BadInput(m)) => {
                assert!(m.starts_with("stdin line 4:") && m.contains("fly"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match parse_line(r#"{"action":"learn_done","ok":true,"message":"bound"}"#, 5) {
            Some(Msg::BadInput(m)) => {
                assert!(
                    m.starts_with("stdin line 5:") && m.contains("unknown variant `learn_done`"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        match bad_line(Line::TooLong(70_000), 6) {
            Some(Msg::BadInput(m)) => assert!(m.contains("line 6") && m.contains("70000"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
