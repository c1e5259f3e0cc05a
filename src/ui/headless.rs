//! Headless front end: JSON-lines actions on stdin, JSON-lines events on stdout, nothing else on
//! stdout. Scripts and tests drive the whole engine through it.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::action::{Action, ActionSource};
use crate::core::effect::Event;
use crate::core::msg::{Msg, StopSignal};

/// Parses one input line into a message (blank lines and `#` comments are skipped).
pub fn parse_line(line: &str, lineno: usize) -> Option<Msg> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    Some(match serde_json::from_str::<Action>(t) {
        Ok(action) => Msg::Action {
            action,
            source: ActionSource::Script,
        },
        Err(e) => Msg::BadInput(format!("stdin line {lineno}: {e}")),
    })
}

/// Reads stdin until EOF or cancellation; EOF asks the engine to stop.
pub async fn read_stdin(inputs: mpsc::Sender<Msg>, cancel: CancellationToken) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut n = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            line = lines.next_line() => match line {
                Ok(Some(l)) => {
                    n += 1;
                    if let Some(m) = parse_line(&l, n) {
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

/// Writes events to stdout, one JSON object per line, until the channel closes.
pub async fn write_stdout(mut events: mpsc::Receiver<Event>) {
    let mut out = tokio::io::stdout();
    while let Some(ev) = events.recv().await {
        let Ok(mut line) = serde_json::to_vec(&ev) else {
            continue;
        };
        line.push(b'\n');
        if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
