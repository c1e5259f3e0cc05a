//! The JSON-lines protocol shared by headless stdin/stdout and the deck socket: bounded line
//! reading, which actions outsiders may send, and timestamped event lines (docs/service.md).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::core::action::Action;
use crate::core::effect::Event;
use crate::core::snapshot::UiSnapshot;

/// Protocol version in the socket's `hello`. Bumped only when a line changes meaning or a field
/// is removed or renamed; new event kinds and new fields come without a bump (clients ignore
/// what they do not know). 2: view actions from a dashboard stay in that dashboard (the
/// snapshot lost `ui.mode`, `ui.preview`, `ui.edit_slot` and `xfade.editing`).
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// What this deck can do beyond the version's basics, listed in the hello: `preview` (it
/// streams video preview frames to a client that asks).
pub(crate) const CAP_PREVIEW: &str = "preview";

/// Most preview frames a second one client gets (fewer when the deck makes fewer).
pub(crate) const PREVIEW_MAX_FPS: u32 = 10;

/// Longest input line accepted (bytes, without the newline): 1 MiB. A longer line is skipped
/// whole with an error naming it; the lines around it are read as usual. The bound is for memory
/// (a stream with no newline); it sits above the data channel's 64 KiB message limit so that an
/// oversized prompt still reaches the transport and gets its own, more precise refusal.
pub(crate) const MAX_LINE: usize = 1024 * 1024;

/// The deck's clock for event timestamps: `t` is seconds since the deck started (monotonic,
/// the same origin as the snapshots' `now` to within a millisecond).
#[derive(Debug, Clone, Copy)]
pub struct DeckClock(Instant);

impl DeckClock {
    /// Starts the clock now.
    pub fn start() -> Self {
        DeckClock(Instant::now())
    }

    /// Seconds since the start, rounded to microseconds (shorter lines, same meaning).
    pub(crate) fn t(&self) -> f64 {
        (self.0.elapsed().as_secs_f64() * 1e6).round() / 1e6
    }
}

/// One line from a bounded reader.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A complete line (without the newline).
    Text(String),
    /// A line longer than [`MAX_LINE`] (its length in bytes); skipped.
    TooLong(usize),
    /// A line that is not UTF-8; skipped.
    NotUtf8,
}

/// Reads newline-terminated lines, never holding more than `max` bytes of one line in memory.
pub(crate) struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// A reader with the given limit.
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line, or `None` at end of input (a last line without newline still counts).
    pub(crate) async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        let mut len = 0usize;
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                if len == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.finish(len)));
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if len + take <= self.max {
                self.buf.extend_from_slice(&chunk[..take]);
            }
            len += take;
            self.inner.consume(if done { take + 1 } else { take });
            if done {
                return Ok(Some(self.finish(len)));
            }
        }
    }

    fn finish(&mut self, len: usize) -> Line {
        if len > self.max {
            return Line::TooLong(len);
        }
        let bytes = std::mem::take(&mut self.buf);
        match String::from_utf8(bytes) {
            Ok(mut s) => {
                if s.ends_with('\r') {
                    s.pop();
                }
                Line::Text(s)
            }
            Err(_) => Line::NotUtf8,
        }
    }
}

/// Parses an action written by someone outside the deck: an unknown action is an error that
/// says why. (The deck's own learn steps are `Msg::Learn`, not actions: no line can name them.)
pub(crate) fn external_action(text: &str) -> Result<Action, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// What a socket client may send besides actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Reply with one `state` line: the full snapshot.
    GetState,
    /// Stream `snapshot` lines (at most at the deck's frame rate) and `log` lines; this
    /// client's actions count as key presses from now on (the attached dashboard).
    Attach,
    /// Start (`on: true`) or stop `preview` lines to this client (capability `preview`).
    Preview {
        /// Wanted or not.
        on: bool,
    },
}

/// One understood line from a socket client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientLine {
    /// An action for the engine.
    Action(Action),
    /// A request answered by the service.
    Request(Request),
}

/// Parses one socket line: `None` for blank lines and `#` comments.
pub fn client_line(text: &str) -> Result<Option<ClientLine>, String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    // A request is an object with `cmd`; everything else is read as an action.
    let is_request = serde_json::from_str::<serde_json::Value>(t)
        .is_ok_and(|v| v.get("cmd").is_some() && v.get("action").is_none());
    if is_request {
        return serde_json::from_str::<Request>(t)
            .map(|r| Some(ClientLine::Request(r)))
            .map_err(|e| e.to_string());
    }
    external_action(t).map(|a| Some(ClientLine::Action(a)))
}

/// An engine event with its timestamp, as one line (newline included).
pub(crate) fn event_line(ev: &Event, t: f64) -> Vec<u8> {
    #[derive(Serialize)]
    struct Stamped<'a> {
        #[serde(flatten)]
        ev: &'a Event,
        t: f64,
    }
    line(&Stamped { ev, t })
}

/// The first line on every socket connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Always `hello`.
    pub(crate) event: String,
    /// [`PROTOCOL_VERSION`].
    pub(crate) protocol: u32,
    /// scope-deck version.
    pub(crate) version: String,
    /// Backend label.
    pub(crate) backend: String,
    /// The serving process.
    pub(crate) pid: u32,
    /// Deck clock, seconds.
    pub(crate) t: f64,
    /// Optional features this deck offers ([`CAP_PREVIEW`]).
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
}

/// A reply or stream line that is not an engine event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServiceLine {
    /// Answer to `get_state`.
    State {
        /// Deck clock, seconds.
        t: f64,
        /// The full snapshot.
        snapshot: Box<UiSnapshot>,
    },
    /// A new snapshot for an attached dashboard.
    Snapshot {
        /// Deck clock, seconds.
        t: f64,
        /// The full snapshot.
        snapshot: Box<UiSnapshot>,
    },
    /// A log record for an attached dashboard's log pane.
    Log {
        /// Deck clock, seconds.
        t: f64,
        /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`.
        level: String,
        /// Emitting module.
        target: String,
        /// Message and fields.
        text: String,
    },
    /// The newest video preview frame, to a client that asked (`{"cmd":"preview","on":true}`).
    Preview {
        /// Deck clock, seconds.
        t: f64,
        /// Frame number (gaps: frames this client skipped, latest-wins).
        seq: u64,
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
        /// `width * height * 3` bytes of packed RGB, row-major, base64 (standard alphabet).
        rgb: String,
    },
    /// This client's line could not be used (only this client sees it).
    Error {
        /// Deck clock, seconds.
        t: f64,
        /// `socket line N: why`.
        message: String,
    },
}

/// A preview frame as one `preview` line.
pub(crate) fn preview_line(frame: &crate::video::PreviewFrame, t: f64) -> Vec<u8> {
    use base64::Engine as _;
    line(&ServiceLine::Preview {
        t,
        seq: frame.seq,
        width: frame.width,
        height: frame.height,
        rgb: base64::engine::general_purpose::STANDARD.encode(&frame.rgb),
    })
}

/// The frame a `preview` line carries; `None` for bad base64 or a size that does not match.
pub(crate) fn preview_frame(
    seq: u64,
    width: u32,
    height: u32,
    rgb: &str,
) -> Option<crate::video::PreviewFrame> {
    use base64::Engine as _;
    let rgb = base64::engine::general_purpose::STANDARD.decode(rgb).ok()?;
    let want = (width as usize)
        .checked_mul(height as usize)?
        .checked_mul(3)?;
    (rgb.len() == want).then_some(crate::video::PreviewFrame {
        width,
        height,
        rgb,
        seq,
    })
}

/// Any serialisable value as one JSON line (newline included); a value that cannot be written
/// becomes an error line rather than nothing.
pub(crate) fn line<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|e| {
        format!(r#"{{"event":"error","message":"cannot encode a line: {e}"}}"#).into_bytes()
    });
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn a_long_line_is_skipped_whole_and_the_next_lines_still_arrive() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\nthird\r\nlast");
        let lines = read_all(&input, 10).await;
        assert_eq!(
            lines,
            vec![
                Line::Text("first".into()),
                Line::TooLong(100),
                Line::Text("third".into()),
                Line::Text("last".into()),
            ]
        );
        assert_eq!(
            read_all(b"\xff\xfe\nok\n", 10).await,
            vec![Line::NotUtf8, Line::Text("ok".into())]
        );
    }

    #[tokio::test]
    async fn the_limit_holds_across_small_reads() {
        // A reader that hands out 3 bytes at a time: the line is counted across fills.
        let data = format!("{}\nshort\n", "y".repeat(40));
        let reader = tokio::io::BufReader::with_capacity(3, data.as_bytes());
        let mut r = LineReader::new(reader, 16);
        assert_eq!(r.next_line().await.unwrap(), Some(Line::TooLong(40)));
        assert_eq!(
            r.next_line().await.unwrap(),
            Some(Line::Text("short".into()))
        );
        assert_eq!(r.next_line().await.unwrap(), None);
    }

    #[test]
    fn the_decks_learn_steps_are_not_actions_anyone_can_send() {
        let e = external_action(r#"{"action":"learn_done","ok":true,"message":"x"}"#).unwrap_err();
        assert!(e.contains("unknown variant `learn_done`"), "{e}");
        let e = external_action(
            r#"{"action":"learn_control","control":{"device":"pad","channel":1,"kind":"cc","number":1}}"#,
        )
        .unwrap_err();
        assert!(e.contains("unknown variant `learn_control`"), "{e}");
        // Nor is the message the MIDI edge sends.
        let e = external_action(r#"{"learn":"saved","message":"x"}"#).unwrap_err();
        assert!(e.contains("action"), "{e}");
        assert_eq!(
            external_action(r#"{"action":"reset_cache"}"#),
            Ok(Action::ResetCache)
        );
        assert!(external_action(r#"{"action":"fly"}"#).is_err());
    }

    #[test]
    fn client_lines_are_actions_or_requests() {
        assert_eq!(
            client_line(r#"{"cmd":"get_state"}"#),
            Ok(Some(ClientLine::Request(Request::GetState)))
        );
        assert_eq!(
            client_line(r#"{"cmd":"attach"}"#),
            Ok(Some(ClientLine::Request(Request::Attach)))
        );
        assert_eq!(
            client_line(r#"{"cmd":"preview","on":true}"#),
            Ok(Some(ClientLine::Request(Request::Preview { on: true })))
        );
        assert!(
            client_line(r#"{"cmd":"preview"}"#).is_err(),
            "on is required"
        );
        assert_eq!(
            client_line(r#"{"action":"theme_next"}"#),
            Ok(Some(ClientLine::Action(Action::ThemeNext)))
        );
        assert_eq!(client_line("  # note"), Ok(None));
        assert!(client_line(r#"{"cmd":"format_disk"}"#).is_err());
        // A prompt that mentions "cmd" is still an action.
        assert_eq!(
            client_line(r#"{"action":"set_prompt","text":"\"cmd\": run"}"#),
            Ok(Some(ClientLine::Action(Action::SetPrompt {
                text: "\"cmd\": run".into(),
                raw: false,
            })))
        );
    }

    #[test]
    fn a_preview_frame_survives_its_line_and_a_bad_one_is_refused() {
        let frame = crate::video::PreviewFrame {
            width: 2,
            height: 1,
            rgb: vec![1, 2, 3, 250, 251, 252],
            seq: 7,
        };
        let l = preview_line(&frame, 1.5);
        let Ok(ServiceLine::Preview {
            seq,
            width,
            height,
            rgb,
            ..
        }) = serde_json::from_slice(&l)
        else {
            panic!("not a preview line: {}", String::from_utf8_lossy(&l));
        };
        assert_eq!(preview_frame(seq, width, height, &rgb), Some(frame));
        assert_eq!(preview_frame(1, 3, 1, &rgb), None, "size mismatch");
        assert_eq!(preview_frame(1, 2, 1, "not base64!"), None);
        assert_eq!(preview_frame(1, u32::MAX, u32::MAX, &rgb), None);
    }

    #[test]
    fn events_carry_their_timestamp_next_to_their_fields() {
        let ev = Event::Stopping {
            reason: "quit".into(),
        };
        let l = event_line(&ev, 1.25);
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event":"stopping","reason":"quit","t":1.25})
        );
        assert_eq!(l.last(), Some(&b'\n'));
    }
}
