//! `replay --compare` on the wire: the data-channel messages the recorded show sent (its `sent`
//! lines, exactly as its transport put them on the wire) against the messages the replay's
//! parameter updates make, aligned so that one extra or missing message is one difference.
//!
//! The transport merges continuous values (latest-wins, at most `send_rate_hz` messages a
//! second) on its own wall clock, so which values share a message depends on when the show's
//! transport happened to send, not only on what the engine asked. The replay therefore cuts its
//! updates into messages where the recorded transport cut (at each recorded `sent` line, the
//! replay has folded exactly what the show had folded): an urgent update is a message of its
//! own, with the continuous values pending before it; the continuous values pending at a cut
//! are one message; a full-state message (on connect) is the replay's own parameter state as it
//! was when the recorded transport read it. Where the replay's updates cannot make the recorded
//! message, the replay's natural message stands in (a changed message), an urgent update the
//! recording never sent becomes an extra message, and a recorded message whose keys the replay
//! never sent is missing. The two sequences are then aligned with a Myers diff (`similar`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde_json::{Map, Value};

/// Updates this close before a cut (ns) may have been made after the recorded transport sent
/// but before its `sent` report was folded: the cut may leave them for the next message. With
/// several outputs on a loaded machine a report was folded 15 ms after the send (two transports
/// and a forwarder per output sharing two cores); 50 ms leaves room. Only a cut whose content
/// equals the recorded message is taken, so a wider window cannot pair unequal messages.
const RACE_NS: u64 = 50_000_000;

/// How far back (ns) the replay's parameter states are kept for a full-state message (the
/// transport reads the state, then reports the message once sent: an offer round trip later).
const FULL_STATE_KEEP_NS: u64 = 10_000_000_000;

/// The longest the alignment may take; past it `similar` falls back to a coarser diff.
const ALIGN_DEADLINE: Duration = Duration::from_secs(10);

/// One message as compared: when (engine time, ns) and its canonical JSON (keys sorted).
type Message = (u64, String);

/// What the comparison found.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Diff {
    /// Data-channel messages in the recording.
    pub(crate) recorded: u64,
    /// Messages the replay made.
    pub(crate) replayed: u64,
    /// Messages the replay made that the recording does not have.
    pub(crate) inserted: u64,
    /// Recorded messages the replay did not make.
    pub(crate) missing: u64,
    /// Messages at the same place with other content.
    pub(crate) changed: u64,
    /// The replay's updates after the recording's last message (the show had stopped sending;
    /// not compared).
    pub(crate) after_end: u64,
    /// The first difference.
    pub(crate) first: Option<First>,
}

impl Diff {
    /// Differences in all.
    pub(crate) fn count(&self) -> u64 {
        self.inserted + self.missing + self.changed
    }
}

/// The first difference: what kind, where, and both sides (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct First {
    /// `inserted`, `missing` or `changed`.
    pub(crate) kind: &'static str,
    /// Engine time, seconds.
    pub(crate) t: f64,
    /// Position in the recorded messages (1-based; for an insertion, the one it comes before).
    pub(crate) index: usize,
    /// The recorded message.
    pub(crate) recorded: Option<String>,
    /// The replayed message.
    pub(crate) replayed: Option<String>,
}

struct Queued {
    t: u64,
    urgent: bool,
    values: Map<String, Value>,
    /// Made while the replay's state already equalled a full-state message's (it set values to
    /// what they were): the show's transport may have read its state before it (then it followed
    /// as a message of its own) or after (then the full state included it and it never went out
    /// alone). Kept queued, and dropped when the next cut cannot be made with it.
    absorbed: bool,
}

/// Collects both sides as the replay reads the recording, then aligns them.
/// Keys a transport puts into a message itself (not the engine's parameters).
const TRANSPORT_KEYS: &[&str] = &["pipeline_ids"];

#[derive(Default)]
pub(crate) struct WireCompare {
    recorded: Vec<Message>,
    replayed: Vec<Message>,
    queue: VecDeque<Queued>,
    states: VecDeque<(u64, Map<String, Value>)>,
    /// The recorded transport was told to connect (or reconnected): its next message is the
    /// whole parameter state.
    full_due: bool,
}

/// Keys sorted at every level: the same message is the same text whichever order its values
/// were merged in.
pub(crate) fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn text(m: &Map<String, Value>) -> String {
    canonical(&Value::Object(m.clone())).to_string()
}

fn merge<'a>(items: impl Iterator<Item = &'a Map<String, Value>>) -> Map<String, Value> {
    let mut out = Map::new();
    for m in items {
        for (k, v) in m {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn same(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    canonical(&Value::Object(a.clone())) == canonical(&Value::Object(b.clone()))
}

impl WireCompare {
    /// A parameter update the replay made at engine time `t` (ns).
    pub(crate) fn update(&mut self, t: u64, urgent: bool, values: &Map<String, Value>) {
        // Through JSON text, as the recorded side was: the same numbers compare equal.
        let values = serde_json::from_str(&Value::Object(values.clone()).to_string())
            .unwrap_or_else(|_| values.clone());
        self.queue.push_back(Queued {
            t,
            urgent,
            values,
            absorbed: false,
        });
    }

    /// The replay's parameter state after a change at `t` (what a full-state message carries).
    pub(crate) fn state(&mut self, t: u64, full: Map<String, Value>) {
        while self
            .states
            .front()
            .is_some_and(|(s, _)| t.saturating_sub(*s) > FULL_STATE_KEEP_NS)
            && self.states.len() > 1
        {
            self.states.pop_front();
        }
        self.states.push_back((t, full));
    }

    /// The recorded show's transport (re)connects: its next message carries the whole state.
    pub(crate) fn expect_full_state(&mut self) {
        self.full_due = true;
    }

    /// A recorded data-channel message, folded at `t` (ns): the replay's message for it is cut
    /// from what it has made so far.
    pub(crate) fn sent(&mut self, t: u64, payload: &Value) {
        let Value::Object(p) = payload else {
            self.recorded.push((t, canonical(payload).to_string()));
            return;
        };
        // Keys the transport adds of its own (a Scope session's initialParameters carry the
        // pipeline it loaded) are not the engine's: left out of the comparison.
        let mut p = p.clone();
        for k in TRANSPORT_KEYS {
            p.remove(*k);
        }
        let p = &p;
        self.recorded.push((t, text(p)));
        loop {
            if let Some(m) = self.exact(t, p) {
                self.replayed.push((t, text(&m)));
                return;
            }
            // Updates the full state may already have carried: without them, try again.
            if self.queue.front().is_some_and(|q| q.absorbed) {
                while self.queue.front().is_some_and(|q| q.absorbed) {
                    self.queue.pop_front();
                }
                continue;
            }
            if self.full_due {
                if let Some(m) = self.full_state(p) {
                    self.full_due = false;
                    self.replayed.push((t, text(&m)));
                    return;
                }
            }
            // An urgent update the recording never sent: the replay's own extra message.
            if let Some(i) = self.queue.iter().position(|q| q.urgent) {
                let m = merge(
                    self.queue
                        .drain(..=i)
                        .map(|q| q.values)
                        .collect::<Vec<_>>()
                        .iter(),
                );
                let at = t;
                self.replayed.push((at, text(&m)));
                continue;
            }
            // The recorded message has a key the replay has not sent since: it never made it.
            let carried = |k: &String| self.queue.iter().any(|q| q.values.contains_key(k));
            if p.keys().any(|k| !carried(k)) || self.queue.is_empty() {
                return;
            }
            // The replay's own message at this cut (other values).
            let m = merge(
                self.queue
                    .drain(..)
                    .map(|q| q.values)
                    .collect::<Vec<_>>()
                    .iter(),
            );
            self.replayed.push((t, text(&m)));
            return;
        }
    }

    /// A cut of the queue that makes exactly `p`, taken off the queue.
    fn exact(&mut self, t: u64, p: &Map<String, Value>) -> Option<Map<String, Value>> {
        let leading = self.queue.iter().take_while(|q| !q.urgent).count();
        // Urgent: its own message with the continuous values pending before it (all, or fewer
        // when the transport had sent some of them just before).
        if let Some(u) = self.queue.get(leading) {
            for j in (0..=leading).rev() {
                let m = merge(
                    self.queue
                        .iter()
                        .take(j)
                        .map(|q| &q.values)
                        .chain(std::iter::once(&u.values)),
                );
                if same(&m, p) {
                    let _ = self.queue.remove(leading);
                    self.queue.drain(..j);
                    return Some(m);
                }
            }
        }
        // Continuous: what was pending at the cut, or without the last few made just before it.
        for k in (1..=leading).rev() {
            if k < leading && self.queue[k].t + RACE_NS < t {
                break;
            }
            let m = merge(self.queue.iter().take(k).map(|q| &q.values));
            if same(&m, p) {
                self.queue.drain(..k);
                return Some(m);
            }
        }
        None
    }

    /// The full-state message after a (re)connect: the replay's state when the transport read
    /// it, or, when no recent state equals it, the latest one (a changed message). Continuous
    /// updates it includes leave the queue.
    ///
    /// A parameter set to the value it has still makes an update (a forwarded beat's phase of 0
    /// before the beat starts, a mapping at its floor), so the state can equal the message over
    /// several updates in a row; which of them the show's transport read before is not in the
    /// recording. The earliest of those states is taken and the updates after it are kept as
    /// `absorbed` (round 12's CI: taking the latest dropped the update the show then sent as
    /// its second message, and the comparison called that message missing).
    fn full_state(&mut self, p: &Map<String, Value>) -> Option<Map<String, Value>> {
        let (from, to, m) = match self.states.iter().rposition(|(_, s)| same(s, p)) {
            Some(last) => {
                // The start of the run of equal states that ends at `last`.
                let first = self
                    .states
                    .range(..last)
                    .rposition(|(_, s)| !same(s, p))
                    .map_or(0, |i| i + 1);
                let (to, m) = &self.states[last];
                (self.states[first].0, *to, m.clone())
            }
            None => {
                let (at, latest) = self.states.back()?;
                (*at, *at, latest.clone())
            }
        };
        self.queue.retain(|q| q.urgent || q.t > from);
        for q in self.queue.iter_mut().filter(|q| !q.urgent && q.t <= to) {
            q.absorbed = true;
        }
        Some(m)
    }

    /// Aligns both sides and counts what differs.
    pub(crate) fn finish(self) -> Diff {
        use similar::{Algorithm, DiffOp};
        let mut d = Diff {
            recorded: self.recorded.len() as u64,
            replayed: self.replayed.len() as u64,
            after_end: self.queue.len() as u64,
            ..Diff::default()
        };
        let old: Vec<&str> = self.recorded.iter().map(|(_, s)| s.as_str()).collect();
        let new: Vec<&str> = self.replayed.iter().map(|(_, s)| s.as_str()).collect();
        let deadline = std::time::Instant::now() + ALIGN_DEADLINE;
        let ops = similar::capture_diff_deadline(
            Algorithm::Myers,
            &old,
            0..old.len(),
            &new,
            0..new.len(),
            Some(deadline),
        );
        let rec = |i: usize| self.recorded.get(i).cloned();
        let rep = |i: usize| self.replayed.get(i).cloned();
        let note = |d: &mut Diff,
                    kind: &'static str,
                    index: usize,
                    a: Option<Message>,
                    b: Option<Message>| {
            if d.first.is_none() {
                let t = a.as_ref().or(b.as_ref()).map_or(0, |m| m.0);
                d.first = Some(First {
                    kind,
                    t: t as f64 / 1e9,
                    index: index + 1,
                    recorded: a.map(|m| m.1),
                    replayed: b.map(|m| m.1),
                });
            }
        };
        for op in ops {
            match op {
                DiffOp::Equal { .. } => {}
                DiffOp::Delete {
                    old_index, old_len, ..
                } => {
                    d.missing += old_len as u64;
                    note(&mut d, "missing", old_index, rec(old_index), None);
                }
                DiffOp::Insert {
                    old_index,
                    new_index,
                    new_len,
                } => {
                    d.inserted += new_len as u64;
                    note(&mut d, "inserted", old_index, None, rep(new_index));
                }
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    let changed = old_len.min(new_len);
                    d.changed += changed as u64;
                    d.missing += (old_len - changed) as u64;
                    d.inserted += (new_len - changed) as u64;
                    note(&mut d, "changed", old_index, rec(old_index), rep(new_index));
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    const MS: u64 = 1_000_000;

    /// A show's lines in fold order: a full state on connect, continuous values at 100 Hz cut
    /// at 60 Hz by the transport, an urgent prompt in the middle.
    struct Show {
        lines: Vec<(u64, Line)>,
    }

    #[derive(Clone)]
    enum Line {
        Connect,
        Update(bool, Map<String, Value>),
        State(Map<String, Value>),
        Sent(Value),
    }

    /// Folds a show's updates (a mapped value at 100 Hz from `release`, an urgent prompt at
    /// 500 ms) through a coalescer-like cut about every 16.7 ms (the show's own transport),
    /// writing both sides as the recording has them.
    fn show(release: f64) -> Show {
        let mut lines = Vec::new();
        let mut pending = Map::new();
        let mut last_sent = 0u64;
        let mut state = obj(json!({"prompts": "a", "noise_scale": 0.0}));
        lines.push((0, Line::State(state.clone())));
        lines.push((0, Line::Connect));
        lines.push((MS, Line::Sent(Value::Object(state.clone()))));
        for tick in 1..100u64 {
            let t = tick * 10 * MS;
            let v = ((tick as f64) * release).sin();
            let u = obj(json!({ "noise_scale": v }));
            state.insert("noise_scale".into(), json!(v));
            lines.push((t, Line::Update(false, u.clone())));
            lines.push((t, Line::State(state.clone())));
            pending.extend(u);
            if tick == 50 {
                let p = obj(json!({"prompts": "b"}));
                state.insert("prompts".into(), json!("b"));
                lines.push((t + MS, Line::Update(true, p.clone())));
                lines.push((t + MS, Line::State(state.clone())));
                let mut m = std::mem::take(&mut pending);
                m.extend(p);
                lines.push((t + 2 * MS, Line::Sent(Value::Object(m))));
                last_sent = t + 2 * MS;
                continue;
            }
            if t >= last_sent + 16_700_000 && !pending.is_empty() {
                // Sent a little after the tick; the report folds 1 ms later.
                lines.push((
                    t + MS,
                    Line::Sent(Value::Object(std::mem::take(&mut pending))),
                ));
                last_sent = t;
            }
        }
        Show { lines }
    }

    /// The recording's lines (the show's sent messages) against a replay that made `updates`.
    fn compare(recorded: &Show, replayed: &Show) -> Diff {
        let mut w = WireCompare::default();
        let sents: Vec<(u64, Line)> = recorded
            .lines
            .iter()
            .filter(|(_, l)| matches!(l, Line::Sent(_) | Line::Connect))
            .cloned()
            .collect();
        // Merge the replay's updates and states with the recorded sent lines by time (fold
        // order).
        let mut others: Vec<(u64, Line)> = replayed
            .lines
            .iter()
            .filter(|(_, l)| !matches!(l, Line::Sent(_) | Line::Connect))
            .cloned()
            .collect();
        others.extend(sents);
        others.sort_by_key(|(t, l)| (*t, matches!(l, Line::Sent(_))));
        for (t, l) in others {
            match l {
                Line::Update(urgent, v) => w.update(t, urgent, &v),
                Line::State(s) => w.state(t, s),
                Line::Sent(p) => w.sent(t, &p),
                Line::Connect => w.expect_full_state(),
            }
        }
        w.finish()
    }

    #[test]
    fn an_identical_replay_has_no_difference() {
        let s = show(0.3);
        let d = compare(&s, &s);
        assert_eq!(d.count(), 0, "{d:?}");
        assert!(d.recorded >= 40, "{d:?}");
        assert_eq!(d.recorded, d.replayed);
        assert_eq!(d.first, None);
    }

    #[test]
    fn one_extra_urgent_message_is_one_insertion() {
        let rec = show(0.3);
        let mut rep = show(0.3);
        // The replay fires a cache reset the show never fired.
        let at = rep.lines.iter().position(|(t, _)| *t >= 705 * MS).unwrap();
        rep.lines.insert(
            at,
            (
                705 * MS,
                Line::Update(true, obj(json!({"reset_cache": true}))),
            ),
        );
        let d = compare(&rec, &rep);
        assert_eq!((d.inserted, d.missing, d.changed), (1, 0, 0), "{d:?}");
        let f = d.first.unwrap();
        assert_eq!(f.kind, "inserted");
        assert!(f.replayed.unwrap().contains("reset_cache"));
        assert!((f.t - 0.71).abs() < 0.02, "{}", f.t);
    }

    #[test]
    fn a_missing_urgent_message_is_one_missing_and_other_values_are_changes() {
        let rec = show(0.3);
        let mut rep = show(0.3);
        rep.lines
            .retain(|(_, l)| !matches!(l, Line::Update(true, _)));
        let d = compare(&rec, &rep);
        assert_eq!((d.inserted, d.missing, d.changed), (0, 1, 0), "{d:?}");
        assert!(
            d.first
                .unwrap()
                .recorded
                .unwrap()
                .contains("\"prompts\":\"b\"")
        );

        // Another release time: the mapping's values differ from the start, found as changes.
        let other = show(0.31);
        let d = compare(&rec, &other);
        assert!(d.changed > 10, "{d:?}");
        assert_eq!(d.first.as_ref().unwrap().kind, "changed");
    }

    /// The full state equals the replay's state before and after an update that set a value to
    /// what it was (round 12's CI: the first forwarded beat's phase 0 before the music's first
    /// beat). Whether the show's transport read its state before that update (which then went
    /// out as the next message) or after (it did not go out alone), the replay matches.
    #[test]
    fn an_update_that_changes_nothing_matches_either_side_of_the_full_state() {
        let run = |read_before: bool| {
            let mut w = WireCompare::default();
            let state = obj(json!({"prompts": "a", "beat_phase": 0.0, "noise_scale": 0.3}));
            w.update(
                10 * MS,
                false,
                &obj(json!({"beat_phase": 0.0, "noise_scale": 0.3})),
            );
            w.state(10 * MS, state.clone());
            w.expect_full_state();
            // The same values again: the store's revision moves, its content does not.
            w.update(
                20 * MS,
                false,
                &obj(json!({"beat_phase": 0.0, "noise_scale": 0.3})),
            );
            w.state(20 * MS, state.clone());
            w.update(30 * MS, false, &obj(json!({"noise_scale": 0.4})));
            w.state(
                30 * MS,
                obj(json!({"prompts": "a", "beat_phase": 0.0, "noise_scale": 0.4})),
            );
            w.sent(30 * MS + 100, &Value::Object(state));
            if read_before {
                w.sent(40 * MS, &json!({"beat_phase": 0.0, "noise_scale": 0.4}));
            } else {
                w.sent(40 * MS, &json!({"noise_scale": 0.4}));
            }
            w.finish()
        };
        for read_before in [true, false] {
            let d = run(read_before);
            assert_eq!(d.count(), 0, "read before the repeat: {read_before}: {d:?}");
            assert_eq!(d.recorded, 2);
        }
    }

    #[test]
    fn a_report_made_after_a_later_update_still_matches() {
        // The transport sent {0.1}; the engine made 0.2 before the report was folded.
        let mut w = WireCompare::default();
        w.update(10 * MS, false, &obj(json!({"x": 0.1})));
        w.update(20 * MS, false, &obj(json!({"x": 0.2})));
        w.sent(20 * MS + 100, &json!({"x": 0.1}));
        w.sent(40 * MS, &json!({"x": 0.2}));
        let d = w.finish();
        assert_eq!(d.count(), 0, "{d:?}");
    }
}
