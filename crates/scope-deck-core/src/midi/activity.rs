//! MIDI input activity per device, for the dashboard's activity pane and headless scripts.
//!
//! The router task (not the port callbacks) feeds every parsed message and every port
//! connect/disconnect into an [`ActivityTracker`]. At each engine tick it asks for a report; the
//! tracker answers at most every [`REPORT_INTERVAL`] and only when something visible changed, so
//! a 1,000-CC/s flood costs the engine at most ten small messages a second. The reducer step
//! [`on_report`] keeps the per-device records in [`MidiInputs`] and stamps each device's last
//! message with engine time (the dashboard's flash).
//!
//! Pure: time is passed in.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::effect::{Effect, Event};
use crate::midi::learn::stable_port_name;
use crate::midi::parse::MidiMsg;
use crate::state::{AppState, Level};

/// Least time between two reports to the engine (at most ~10 per second).
pub const REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// Devices remembered at most; past that the oldest vanished one is forgotten.
pub const MAX_DEVICES: usize = 32;

const BUCKET_MS: u128 = 100;
const BUCKETS: usize = 10;

/// What one input port did, as reported to the engine (and in headless `midi_activity` events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceActivity {
    /// Input-port name as the MIDI backend reports it.
    pub name: String,
    /// The port is open (false: it vanished; it is reopened when it comes back).
    pub connected: bool,
    /// Messages received since start, clock pulses not counted.
    pub count: u64,
    /// Such messages within the last second.
    pub rate: u32,
    /// The last such message (channels 0-based, as everywhere in [`MidiMsg`]).
    pub last: Option<MidiMsg>,
    /// Clock pulses arrived within the last second.
    pub clock: bool,
}

/// Messages per 100 ms bucket over the last second.
#[derive(Debug, Clone, Default)]
struct Window {
    buckets: [u32; BUCKETS],
    /// Index (ms / 100) of the newest bucket.
    head: u64,
}

impl Window {
    fn advance(&mut self, idx: u64) {
        if idx <= self.head {
            return;
        }
        let steps = (idx - self.head).min(BUCKETS as u64);
        for k in 1..=steps {
            self.buckets[((self.head + k) % BUCKETS as u64) as usize] = 0;
        }
        self.head = idx;
    }

    fn add(&mut self, idx: u64) {
        self.advance(idx);
        let slot = &mut self.buckets[(self.head % BUCKETS as u64) as usize];
        *slot = slot.saturating_add(1);
    }

    fn sum(&self) -> u32 {
        self.buckets.iter().fold(0u32, |a, b| a.saturating_add(*b))
    }
}

#[derive(Debug, Clone)]
struct Device {
    name: Arc<str>,
    connected: bool,
    count: u64,
    last: Option<MidiMsg>,
    messages: Window,
    clock: Window,
    /// When it was last heard of (for forgetting the oldest vanished device).
    seen: Duration,
}

fn bucket(t: Duration) -> u64 {
    (t.as_millis() / BUCKET_MS) as u64
}

/// Aggregates input activity per port; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct ActivityTracker {
    devices: Vec<Device>,
    /// What was last reported (`None`: nothing yet).
    sent: Option<Vec<DeviceActivity>>,
    last_check: Option<Duration>,
    /// Report once at start even with no device, so the dashboard can say "no MIDI input".
    announce: bool,
}

impl ActivityTracker {
    /// A tracker; with `announce` the first report goes out even when no device was seen (MIDI
    /// inputs are configured, the dashboard should say so when nothing is plugged in).
    pub fn new(announce: bool) -> Self {
        ActivityTracker {
            announce,
            ..Self::default()
        }
    }

    fn device(&mut self, port: &str, t: Duration) -> &mut Device {
        let i = match self.devices.iter().position(|d| &*d.name == port) {
            Some(i) => i,
            None => {
                if self.devices.len() >= MAX_DEVICES {
                    // Forget the vanished device heard of longest ago (or the oldest of all).
                    let victim = self
                        .devices
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, d)| (d.connected, d.seen))
                        .map_or(0, |(i, _)| i);
                    self.devices.remove(victim);
                }
                self.devices.push(Device {
                    name: Arc::from(port),
                    connected: true,
                    count: 0,
                    last: None,
                    messages: Window::default(),
                    clock: Window::default(),
                    seen: t,
                });
                self.devices.len() - 1
            }
        };
        &mut self.devices[i]
    }

    /// One parsed message from `port` at `t` (time since the edge started).
    pub fn on_message(&mut self, port: &str, msg: &MidiMsg, t: Duration) {
        let d = self.device(port, t);
        d.connected = true;
        d.seen = t;
        if *msg == MidiMsg::Clock {
            d.clock.add(bucket(t));
        } else {
            d.count += 1;
            d.last = Some(*msg);
            d.messages.add(bucket(t));
        }
    }

    /// `port` was opened (`true`) or vanished (`false`) at `t`.
    pub fn on_port(&mut self, port: &str, connected: bool, t: Duration) {
        if !connected && !self.devices.iter().any(|d| &*d.name == port) {
            return;
        }
        let d = self.device(port, t);
        d.connected = connected;
        d.seen = t;
    }

    /// The report due at `t`: every known device, when at least [`REPORT_INTERVAL`] passed since
    /// the last check and something changed since the last report (rates falling back to zero
    /// count as changes).
    pub fn report(&mut self, t: Duration) -> Option<Vec<DeviceActivity>> {
        if self
            .last_check
            .is_some_and(|c| t.saturating_sub(c) < REPORT_INTERVAL)
        {
            return None;
        }
        if self.devices.is_empty() && (self.sent.is_some() || !self.announce) {
            return None;
        }
        self.last_check = Some(t);
        let now = bucket(t);
        let current: Vec<DeviceActivity> = self
            .devices
            .iter_mut()
            .map(|d| {
                d.messages.advance(now);
                d.clock.advance(now);
                DeviceActivity {
                    name: d.name.to_string(),
                    connected: d.connected,
                    count: d.count,
                    rate: d.messages.sum(),
                    last: d.last,
                    clock: d.clock.sum() > 0,
                }
            })
            .collect();
        if self.sent.as_ref() == Some(&current) {
            return None;
        }
        self.sent = Some(current.clone());
        Some(current)
    }
}

/// One input device as the engine keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MidiDevice {
    /// The latest report.
    pub activity: DeviceActivity,
    /// Engine time at which a report first showed a message the previous one had not
    /// (drives the dashboard's activity flash).
    pub last_at: Option<Duration>,
}

impl MidiDevice {
    /// The port name without ALSA's changing `client:port` numbers.
    pub fn label(&self) -> String {
        stable_port_name(&self.activity.name)
    }
}

/// MIDI input activity in the engine state (`ControlsSlice::midi`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct MidiInputs {
    /// The MIDI edge listens for inputs (a report arrived): with no device the dashboard says
    /// "no MIDI input" instead of nothing.
    pub configured: bool,
    /// Devices in the order the edge first saw them.
    pub devices: Vec<MidiDevice>,
}

/// The reducer step for `Msg::MidiActivity`: replaces the device records, stamps new activity
/// with `now`, tells the performer when a device appears or vanishes, and emits the report.
pub fn on_report(
    state: &mut AppState,
    report: Vec<DeviceActivity>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let midi = &mut state.controls.midi;
    midi.configured = true;
    let mut notices = Vec::new();
    let devices: Vec<MidiDevice> = report
        .iter()
        .map(|a| {
            let old = midi.devices.iter().find(|d| d.activity.name == a.name);
            let moved = old.map_or(a.count > 0, |o| a.count > o.activity.count);
            let was = old.map(|o| o.activity.connected);
            let label = stable_port_name(&a.name);
            match (was, a.connected) {
                (None | Some(false), true) => {
                    notices.push((Level::Info, format!("MIDI input connected: {label}")))
                }
                (Some(true), false) => {
                    notices.push((Level::Warn, format!("MIDI input gone: {label}")))
                }
                _ => {}
            }
            MidiDevice {
                activity: a.clone(),
                last_at: if moved {
                    Some(now)
                } else {
                    old.and_then(|o| o.last_at)
                },
            }
        })
        .collect();
    midi.devices = devices;
    for (level, message) in notices {
        crate::ctx::notice(state, fx, level, message, now);
    }
    fx.push(Effect::Emit(Event::MidiActivity { devices: report }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Msg;
    use crate::update::update;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn cc(value: u8) -> MidiMsg {
        MidiMsg::Cc {
            channel: 0,
            cc: 74,
            value,
        }
    }

    #[test]
    fn a_flood_becomes_at_most_one_report_per_interval() {
        let mut t = ActivityTracker::new(false);
        assert_eq!(t.report(ms(0)), None, "nothing to say without devices");
        let mut reports = Vec::new();
        // 1,000 CCs a second for two seconds, reports asked for every 16 ms.
        for i in 0..2000u64 {
            t.on_message("pad 20:0", &cc((i % 128) as u8), ms(i));
            if i % 16 == 0 {
                reports.extend(t.report(ms(i)));
            }
        }
        assert!(reports.len() <= 21, "{} reports in 2 s", reports.len());
        assert!(reports.len() >= 10, "{} reports in 2 s", reports.len());
        let last = reports.last().unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].name, "pad 20:0");
        assert!(last[0].connected);
        assert!(last[0].count >= 1900, "{}", last[0].count);
        assert!((900..=1000).contains(&last[0].rate), "{}", last[0].rate);
        assert!(!last[0].clock);
    }

    #[test]
    fn quiet_devices_report_once_more_when_the_rate_falls_then_nothing() {
        let mut t = ActivityTracker::new(false);
        t.on_message("pad", &cc(1), ms(0));
        t.on_message("pad", &cc(2), ms(10));
        let r = t.report(ms(20)).unwrap();
        assert_eq!((r[0].count, r[0].rate, r[0].last), (2, 2, Some(cc(2))));
        assert_eq!(t.report(ms(500)), None, "nothing changed");
        let r = t.report(ms(1100)).unwrap();
        assert_eq!((r[0].count, r[0].rate), (2, 0), "the second has passed");
        assert_eq!(t.report(ms(5000)), None);
    }

    #[test]
    fn clock_pulses_set_the_clock_flag_but_not_the_last_message() {
        let mut t = ActivityTracker::new(false);
        t.on_message("tr8", &MidiMsg::Start, ms(0));
        for i in 0..24 {
            t.on_message("tr8", &MidiMsg::Clock, ms(i * 20));
        }
        let r = t.report(ms(480)).unwrap();
        assert_eq!(r[0].count, 1);
        assert_eq!(r[0].last, Some(MidiMsg::Start));
        assert!(r[0].clock);
        assert!(!t.report(ms(2000)).unwrap()[0].clock);
    }

    #[test]
    fn ports_come_and_go_and_unknown_ports_are_not_invented() {
        let mut t = ActivityTracker::new(true);
        assert_eq!(t.report(ms(0)), Some(vec![]), "announced once");
        assert_eq!(t.report(ms(200)), None);
        t.on_port("ghost", false, ms(250));
        assert_eq!(
            t.report(ms(300)),
            None,
            "a vanished unknown port is ignored"
        );
        t.on_port("nano 24:0", true, ms(300));
        let r = t.report(ms(400)).unwrap();
        assert_eq!((r[0].connected, r[0].count, r[0].last), (true, 0, None));
        t.on_port("nano 24:0", false, ms(450));
        let r = t.report(ms(500)).unwrap();
        assert!(!r[0].connected);
        t.on_port("nano 24:0", true, ms(550));
        assert!(t.report(ms(600)).unwrap()[0].connected);
    }

    #[test]
    fn the_device_list_is_bounded_forgetting_vanished_ones_first() {
        let mut t = ActivityTracker::new(false);
        for i in 0..MAX_DEVICES as u64 {
            t.on_port(&format!("dev{i}"), true, ms(i));
        }
        t.on_port("dev5", false, ms(100));
        t.on_port("late", true, ms(200));
        let r = t.report(ms(300)).unwrap();
        assert_eq!(r.len(), MAX_DEVICES);
        assert!(!r.iter().any(|d| d.name == "dev5"));
        assert!(r.iter().any(|d| d.name == "late"));
    }

    fn report(state: &mut AppState, devices: Vec<DeviceActivity>, t: u64) -> Vec<Effect> {
        update(state, Msg::MidiActivity(devices), ms(t))
    }

    fn dev(name: &str, connected: bool, count: u64) -> DeviceActivity {
        DeviceActivity {
            name: name.into(),
            connected,
            count,
            rate: 0,
            last: (count > 0).then(|| cc(count as u8)),
            clock: false,
        }
    }

    #[test]
    fn reducer_stamps_new_activity_and_keeps_the_old_stamp_otherwise() {
        let mut st = AppState::new(Default::default());
        assert!(!st.controls.midi.configured);
        let fx = report(&mut st, vec![], 0);
        assert!(st.controls.midi.configured);
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Emit(Event::MidiActivity { devices }) if devices.is_empty()
        )));
        report(&mut st, vec![dev("pad 20:0", true, 0)], 100);
        assert_eq!(st.controls.midi.devices[0].last_at, None);
        assert_eq!(st.controls.midi.devices[0].label(), "pad");
        report(
            &mut st,
            vec![dev("pad 20:0", true, 3), dev("keys", true, 1)],
            200,
        );
        assert_eq!(st.controls.midi.devices[0].last_at, Some(ms(200)));
        assert_eq!(st.controls.midi.devices[1].last_at, Some(ms(200)));
        // Only the rate changed for the pad; the keys moved again.
        let mut pad = dev("pad 20:0", true, 3);
        pad.rate = 0;
        report(&mut st, vec![pad, dev("keys", true, 2)], 900);
        assert_eq!(st.controls.midi.devices[0].last_at, Some(ms(200)));
        assert_eq!(st.controls.midi.devices[1].last_at, Some(ms(900)));
        assert_eq!(st.controls.midi.devices[0].activity.count, 3);
    }

    #[test]
    fn reducer_marks_a_vanished_device_gone_and_says_so() {
        let mut st = AppState::new(Default::default());
        report(&mut st, vec![dev("Launchpad X", true, 5)], 0);
        assert!(
            st.ui
                .notices
                .back()
                .unwrap()
                .message
                .contains("connected: Launchpad X")
        );
        let fx = report(&mut st, vec![dev("Launchpad X", false, 5)], 1000);
        let d = &st.controls.midi.devices[0];
        assert!(!d.activity.connected);
        assert_eq!(d.last_at, Some(ms(0)), "count unchanged: no new flash");
        let n = st.ui.notices.back().unwrap();
        assert_eq!(n.level, Level::Warn);
        assert_eq!(n.message, "MIDI input gone: Launchpad X");
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Emit(Event::Notice { .. })))
        );
        // The same report again says nothing new.
        let before = st.ui.notices.len();
        report(&mut st, vec![dev("Launchpad X", false, 5)], 1100);
        assert_eq!(st.ui.notices.len(), before);
        // It comes back.
        report(&mut st, vec![dev("Launchpad X", true, 5)], 2000);
        assert!(st.controls.midi.devices[0].activity.connected);
        assert!(st.ui.notices.back().unwrap().message.contains("connected"));
    }
}
