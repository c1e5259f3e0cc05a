//! MIDI bindings (`[[midi]]` in keymap files): which control does what, and the pure evaluation
//! of one incoming message against one binding (channel, range, curve, invert, soft takeover,
//! relative encoders, 14-bit pairs, note modes, list step/select).

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::midi::parse::MidiMsg;

/// Which kind of control a binding listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// A 7-bit control change (absolute fader/knob, relative encoder, or a button sending CC).
    Cc,
    /// A 14-bit control change pair: MSB on `cc` (0..=31), LSB on `lsb` (default `cc + 32`).
    Cc14,
    /// A note (pad, key, button).
    Note,
    /// A program change.
    Program,
    /// The pitch-bend wheel/strip (14-bit).
    PitchBend,
}

/// How a CC value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoder {
    /// The value is a position (fader, pot).
    #[default]
    Absolute,
    /// Relative: 1..63 up, 127..65 down (127 = -1).
    TwosComplement,
    /// Relative: 65.. up, ..63 down (64 = no change).
    Offset64,
    /// Relative: bit 6 is the sign (1 = +1, 65 = -1).
    SignBit,
}

/// What a button (note, or CC used as a button) does on press and release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ButtonMode {
    /// Fire on press; release does nothing.
    #[default]
    Trigger,
    /// Each press alternates between on and off.
    Toggle,
    /// On while held, off on release.
    Hold,
}

/// Response curve applied to the normalised 0..1 position before scaling into the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Curve {
    /// Straight.
    #[default]
    Linear,
    /// Fine control at the bottom (x²).
    Exp,
    /// Fine control at the top (√x).
    Log,
    /// Fine control at both ends (smoothstep).
    S,
}

impl Curve {
    /// Applies the curve to `x` in 0..1.
    pub fn apply(self, x: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        match self {
            Curve::Linear => x,
            Curve::Exp => x * x,
            Curve::Log => x.sqrt(),
            Curve::S => x * x * (3.0 - 2.0 * x),
        }
    }

    /// The inverse, to place a parameter value on the control's travel (soft takeover, learn).
    pub fn invert(self, y: f64) -> f64 {
        let y = y.clamp(0.0, 1.0);
        match self {
            Curve::Linear => y,
            Curve::Exp => y.sqrt(),
            Curve::Log => y * y,
            Curve::S => {
                // Bisection: smoothstep is monotonic on 0..1.
                let (mut lo, mut hi) = (0.0, 1.0);
                for _ in 0..40 {
                    let mid = (lo + hi) / 2.0;
                    if Curve::S.apply(mid) < y {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                (lo + hi) / 2.0
            }
        }
    }
}

/// A list that a control can step through or select from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// The theme list.
    Theme,
    /// The active theme's prompt list.
    Prompt,
}

/// What the binding drives.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A numeric parameter: absolute position → `set_param`, relative → `adjust_param`, button →
    /// range high/low.
    Param(String),
    /// Actions: `on` for press (or a rising CC), `off` for release/toggle-off.
    Action {
        /// On press.
        on: Action,
        /// On release (hold) or second press (toggle); `None` repeats nothing.
        off: Option<Action>,
    },
    /// A list: absolute position/program selects an entry, relative steps through it.
    List {
        /// Which list.
        list: ListKind,
        /// Entries the control's travel is divided into (absolute CC, pitch bend).
        count: Option<usize>,
    },
}

/// One validated binding.
#[derive(Debug, Clone, PartialEq)]
pub struct MidiBinding {
    /// Input-port name pattern; `None` listens to every opened port.
    pub device: Option<String>,
    /// 0-based channel; `None` = any.
    pub channel: Option<u8>,
    /// Control kind.
    pub kind: ControlKind,
    /// CC number (MSB for 14-bit), note or program number.
    pub number: Option<u8>,
    /// LSB CC number for 14-bit pairs.
    pub lsb: u8,
    /// How CC values are read.
    pub encoder: Encoder,
    /// Button behaviour.
    pub mode: ButtonMode,
    /// What it drives.
    pub target: Target,
    /// Output range; `None` uses the parameter's own range (or 0..1).
    pub range: Option<(f64, f64)>,
    /// Response curve.
    pub curve: Curve,
    /// Reverse the travel (and the direction of relative encoders).
    pub invert: bool,
    /// Only take over once the control passes the current value.
    pub soft_takeover: bool,
    /// Change per encoder detent (relative), in target units; `None` = 1/100 of the range.
    pub step: Option<f64>,
}

/// The current value of a parameter as the engine last published it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Current {
    /// Value.
    pub value: f64,
    /// The parameter's own range, if it has one.
    pub range: Option<(f64, f64)>,
    /// True when the last change came from MIDI (soft takeover keeps its pickup then).
    pub by_midi: bool,
}

/// How the router may merge an output with later ones from the same binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// Never merged or delayed: sent at once (buttons, programs, panic).
    Never,
    /// A later value replaces this one.
    Latest,
    /// Deltas add up (`adjust_param`).
    Sum,
}

/// What evaluating a message produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The action to send.
    pub action: Action,
    /// Coalescing policy.
    pub coalesce: Coalesce,
}

/// Per-binding runtime state (toggles, 14-bit latch, soft-takeover pickup, last selection).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindingState {
    /// Toggle position.
    pub toggled: bool,
    /// CC-as-button: was pressed.
    pressed: bool,
    /// Last 14-bit MSB and LSB seen.
    msb: Option<u8>,
    lsb: Option<u8>,
    /// Soft takeover has picked up.
    pub picked_up: bool,
    /// Last normalised position of the control (after invert), for crossing detection.
    last_pos: Option<f64>,
    /// Last value sent for this binding.
    pub last_sent: Option<f64>,
    /// Last selected index (list select), to send only changes.
    last_index: Option<usize>,
}

/// Tolerance (fraction of the range) within which soft takeover picks up.
pub const TAKEOVER_TOLERANCE: f64 = 0.02;

/// Decodes a relative encoder value into signed detents.
pub fn relative_ticks(encoder: Encoder, v: u8) -> i32 {
    let v = i32::from(v & 127);
    match encoder {
        Encoder::Absolute => 0,
        Encoder::TwosComplement => {
            if v < 64 {
                v
            } else {
                v - 128
            }
        }
        Encoder::Offset64 => v - 64,
        Encoder::SignBit => {
            if v & 64 != 0 {
                -(v & 63)
            } else {
                v & 63
            }
        }
    }
}

/// What a message means to a binding, before targets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    /// Absolute position 0..1.
    Position(f64),
    /// Relative detents.
    Ticks(i32),
    /// Button press/release.
    Button(bool),
    /// Program number.
    Program(u8),
}

impl MidiBinding {
    /// Whether this binding listens to `msg` (channel, kind, number) — device matching is done
    /// by the router.
    pub fn matches(&self, msg: &MidiMsg) -> bool {
        let (ch, ok) = match *msg {
            MidiMsg::Cc { channel, cc, .. } => (
                channel,
                match self.kind {
                    ControlKind::Cc => Some(cc) == self.number,
                    ControlKind::Cc14 => Some(cc) == self.number || cc == self.lsb,
                    _ => false,
                },
            ),
            MidiMsg::NoteOn { channel, note, .. } | MidiMsg::NoteOff { channel, note, .. } => (
                channel,
                self.kind == ControlKind::Note && Some(note) == self.number,
            ),
            MidiMsg::Program { channel, program } => (
                channel,
                self.kind == ControlKind::Program && self.number.is_none_or(|n| n == program),
            ),
            MidiMsg::PitchBend { channel, .. } => (channel, self.kind == ControlKind::PitchBend),
            _ => return false,
        };
        ok && self.channel.is_none_or(|c| c == ch)
    }

    /// Is this binding a button (press/release semantics)?
    fn is_button(&self) -> bool {
        match self.kind {
            ControlKind::Note => true,
            ControlKind::Cc => {
                self.encoder == Encoder::Absolute && matches!(self.target, Target::Action { .. })
            }
            _ => false,
        }
    }

    fn input(&self, st: &mut BindingState, msg: &MidiMsg) -> Option<Input> {
        match *msg {
            MidiMsg::NoteOn { .. } => Some(Input::Button(true)),
            MidiMsg::NoteOff { .. } => Some(Input::Button(false)),
            MidiMsg::Program { program, .. } => Some(Input::Program(program)),
            MidiMsg::PitchBend { value, .. } => Some(Input::Position(f64::from(value) / 16383.0)),
            MidiMsg::Cc { cc, value, .. } => match self.kind {
                ControlKind::Cc14 => {
                    if Some(cc) == self.number {
                        st.msb = Some(value);
                        // Many controllers send MSB then LSB; an MSB alone already moves.
                        st.lsb = Some(0);
                    } else {
                        st.lsb = Some(value);
                    }
                    let v = u16::from(st.msb?) << 7 | u16::from(st.lsb.unwrap_or(0));
                    Some(Input::Position(f64::from(v) / 16383.0))
                }
                _ if self.is_button() => Some(Input::Button(value >= 64)),
                _ if self.encoder != Encoder::Absolute => {
                    Some(Input::Ticks(relative_ticks(self.encoder, value)))
                }
                _ => Some(Input::Position(f64::from(value) / 127.0)),
            },
            _ => None,
        }
    }

    /// The output range for a current value.
    fn range(&self, current: Option<&Current>) -> (f64, f64) {
        self.range
            .or(current.and_then(|c| c.range))
            .unwrap_or((0.0, 1.0))
    }

    /// Evaluates `msg` (which [`matches`](Self::matches)) against this binding.
    /// `current` is the target parameter's published value (soft takeover, ranges).
    pub fn eval(
        &self,
        st: &mut BindingState,
        msg: &MidiMsg,
        current: Option<Current>,
    ) -> Option<Output> {
        let input = self.input(st, msg)?;
        match (&self.target, input) {
            (_, Input::Button(pressed)) => self.button(st, pressed, current.as_ref()),
            (Target::Param(key), Input::Position(x)) => {
                let pos = if self.invert { 1.0 - x } else { x };
                let (lo, hi) = self.range(current.as_ref());
                let value = lo + self.curve.apply(pos) * (hi - lo);
                if self.soft_takeover && !self.take_over(st, pos, value, (lo, hi), current) {
                    st.last_pos = Some(pos);
                    return None;
                }
                st.last_pos = Some(pos);
                st.last_sent = Some(value);
                Some(Output {
                    action: Action::SetParam {
                        key: key.clone(),
                        value: serde_json::json!(value),
                    },
                    coalesce: Coalesce::Latest,
                })
            }
            (Target::Param(key), Input::Ticks(t)) => {
                if t == 0 {
                    return None;
                }
                let (lo, hi) = self.range(current.as_ref());
                let step = self.step.unwrap_or((hi - lo).abs() / 100.0);
                let sign = if self.invert { -1.0 } else { 1.0 };
                Some(Output {
                    action: Action::AdjustParam {
                        key: key.clone(),
                        delta: f64::from(t) * step * sign,
                    },
                    coalesce: Coalesce::Sum,
                })
            }
            (Target::List { list, count }, Input::Position(x)) => {
                let n = (*count)?.max(1);
                let pos = if self.invert { 1.0 - x } else { x };
                let index = ((self.curve.apply(pos) * n as f64) as usize).min(n - 1);
                if st.last_index == Some(index) {
                    return None;
                }
                st.last_index = Some(index);
                Some(Output {
                    action: select(*list, index),
                    coalesce: Coalesce::Latest,
                })
            }
            (Target::List { list, .. }, Input::Ticks(t)) => {
                let up = (t > 0) != self.invert;
                (t != 0).then(|| Output {
                    action: step(*list, up),
                    coalesce: Coalesce::Never,
                })
            }
            (Target::List { list, count }, Input::Program(p)) => {
                let index = usize::from(p);
                if count.is_some_and(|n| index >= n) {
                    return None;
                }
                Some(Output {
                    action: select(*list, index),
                    coalesce: Coalesce::Never,
                })
            }
            (Target::Action { on, .. }, Input::Program(_)) => Some(Output {
                action: on.clone(),
                coalesce: Coalesce::Never,
            }),
            _ => None,
        }
    }

    /// Soft takeover: true once the control has reached (or crossed) the current value.
    fn take_over(
        &self,
        st: &mut BindingState,
        pos: f64,
        value: f64,
        (lo, hi): (f64, f64),
        current: Option<Current>,
    ) -> bool {
        let Some(cur) = current else {
            st.picked_up = true;
            return true;
        };
        let span = (hi - lo).abs().max(f64::EPSILON);
        // Someone else (keys, mapping, script) moved the parameter: let go until we meet again.
        if st.picked_up
            && !cur.by_midi
            && st
                .last_sent
                .is_none_or(|s| (s - cur.value).abs() / span > TAKEOVER_TOLERANCE)
        {
            st.picked_up = false;
        }
        if st.picked_up {
            return true;
        }
        if (value - cur.value).abs() / span <= TAKEOVER_TOLERANCE {
            st.picked_up = true;
            return true;
        }
        // Crossing: the control moved from one side of the current value to the other.
        let cur_pos = {
            let y = ((cur.value - lo) / (hi - lo)).clamp(0.0, 1.0);
            self.curve.invert(y)
        };
        if let Some(prev) = st.last_pos {
            if (prev - cur_pos) * (pos - cur_pos) <= 0.0 {
                st.picked_up = true;
                return true;
            }
        }
        false
    }

    fn button(
        &self,
        st: &mut BindingState,
        pressed: bool,
        current: Option<&Current>,
    ) -> Option<Output> {
        // CC buttons send a stream of values; act only on edges.
        if self.kind == ControlKind::Cc {
            if st.pressed == pressed {
                return None;
            }
            st.pressed = pressed;
        }
        let on = match (self.mode, pressed) {
            (ButtonMode::Trigger, true) => true,
            (ButtonMode::Trigger, false) | (ButtonMode::Toggle, false) => return None,
            (ButtonMode::Toggle, true) => {
                st.toggled = !st.toggled;
                st.toggled
            }
            (ButtonMode::Hold, p) => p,
        };
        let on = on != (self.invert && self.mode != ButtonMode::Trigger);
        let action = match &self.target {
            Target::Action { on: a, off } => {
                if on {
                    a.clone()
                } else {
                    off.clone()
                        .or_else(|| (self.mode == ButtonMode::Toggle).then(|| a.clone()))?
                }
            }
            Target::Param(key) => {
                let (lo, hi) = self.range(current);
                let v = if on { hi } else { lo };
                st.last_sent = Some(v);
                Action::SetParam {
                    key: key.clone(),
                    value: serde_json::json!(v),
                }
            }
            Target::List { list, .. } => {
                if !on {
                    return None;
                }
                step(*list, !self.invert)
            }
        };
        Some(Output {
            action,
            coalesce: Coalesce::Never,
        })
    }
}

fn select(list: ListKind, index: usize) -> Action {
    match list {
        ListKind::Theme => Action::SelectTheme { index },
        ListKind::Prompt => Action::SelectPrompt { index },
    }
}

fn step(list: ListKind, up: bool) -> Action {
    match (list, up) {
        (ListKind::Theme, true) => Action::ThemeNext,
        (ListKind::Theme, false) => Action::ThemePrev,
        (ListKind::Prompt, true) => Action::PromptNext,
        (ListKind::Prompt, false) => Action::PromptPrev,
    }
}

/// Matches a port name against a device pattern: `*` and `?` wildcards, case-insensitive; a
/// pattern without wildcards matches as a substring (`"nanoKONTROL"` finds `"nanoKONTROL2:0"`).
pub fn device_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    if !p.iter().any(|c| *c == '*' || *c == '?') {
        return name.to_lowercase().contains(&pattern.to_lowercase());
    }
    glob(&p, &n)
}

fn glob(p: &[char], n: &[char]) -> bool {
    // Iterative wildcard match with backtracking on the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(kind: ControlKind, number: Option<u8>) -> MidiBinding {
        MidiBinding {
            device: None,
            channel: None,
            kind,
            number,
            lsb: number.map_or(32, |n| n + 32),
            encoder: Encoder::Absolute,
            mode: ButtonMode::Trigger,
            target: Target::Param("noise_scale".into()),
            range: None,
            curve: Curve::Linear,
            invert: false,
            soft_takeover: false,
            step: None,
        }
    }

    fn cc(cc: u8, value: u8) -> MidiMsg {
        MidiMsg::Cc {
            channel: 0,
            cc,
            value,
        }
    }

    fn on(note: u8) -> MidiMsg {
        MidiMsg::NoteOn {
            channel: 0,
            note,
            velocity: 100,
        }
    }

    fn off(note: u8) -> MidiMsg {
        MidiMsg::NoteOff {
            channel: 0,
            note,
            velocity: 0,
        }
    }

    fn set_value(o: Option<Output>) -> f64 {
        match o.map(|o| o.action) {
            Some(Action::SetParam { value, .. }) => value.as_f64().unwrap(),
            other => panic!("expected set_param, got {other:?}"),
        }
    }

    fn cur(value: f64, by_midi: bool) -> Option<Current> {
        Some(Current {
            value,
            range: Some((0.0, 1.0)),
            by_midi,
        })
    }

    #[test]
    fn channel_and_number_filter() {
        let mut b = param(ControlKind::Cc, Some(7));
        b.channel = Some(2);
        assert!(b.matches(&MidiMsg::Cc {
            channel: 2,
            cc: 7,
            value: 1
        }));
        assert!(!b.matches(&MidiMsg::Cc {
            channel: 1,
            cc: 7,
            value: 1
        }));
        assert!(!b.matches(&cc(8, 1)));
        assert!(!b.matches(&on(7)));
        b.channel = None;
        assert!(b.matches(&MidiMsg::Cc {
            channel: 15,
            cc: 7,
            value: 1
        }));
    }

    #[test]
    fn absolute_cc_maps_range_curve_and_invert() {
        let mut b = param(ControlKind::Cc, Some(1));
        let mut st = BindingState::default();
        assert_eq!(set_value(b.eval(&mut st, &cc(1, 127), None)), 1.0);
        assert_eq!(set_value(b.eval(&mut st, &cc(1, 0), None)), 0.0);
        b.range = Some((2.0, 4.0));
        assert!((set_value(b.eval(&mut st, &cc(1, 127), None)) - 4.0).abs() < 1e-9);
        b.invert = true;
        assert!((set_value(b.eval(&mut st, &cc(1, 127), None)) - 2.0).abs() < 1e-9);
        b.invert = false;
        b.curve = Curve::Exp;
        let mid = set_value(b.eval(&mut st, &cc(1, 64), None));
        let x = 64.0 / 127.0;
        assert!((mid - (2.0 + 2.0 * x * x)).abs() < 1e-9);
        b.curve = Curve::Log;
        let mid = set_value(b.eval(&mut st, &cc(1, 64), None));
        assert!((mid - (2.0 + 2.0 * f64::sqrt(x))).abs() < 1e-9);
        b.curve = Curve::S;
        let mid = set_value(b.eval(&mut st, &cc(1, 64), None));
        assert!((mid - (2.0 + 2.0 * x * x * (3.0 - 2.0 * x))).abs() < 1e-9);
        assert_eq!(
            b.eval(&mut st, &cc(1, 64), None).unwrap().coalesce,
            Coalesce::Latest
        );
    }

    #[test]
    fn range_defaults_to_the_parameters_own() {
        let b = param(ControlKind::Cc, Some(1));
        let mut st = BindingState::default();
        let c = Some(Current {
            value: 0.0,
            range: Some((0.0, 10.0)),
            by_midi: true,
        });
        assert_eq!(set_value(b.eval(&mut st, &cc(1, 127), c)), 10.0);
    }

    #[test]
    fn curves_invert_round_trip() {
        for c in [Curve::Linear, Curve::Exp, Curve::Log, Curve::S] {
            for i in 0..=10 {
                let x = f64::from(i) / 10.0;
                assert!((c.invert(c.apply(x)) - x).abs() < 1e-6, "{c:?} {x}");
            }
        }
    }

    #[test]
    fn relative_encoder_styles() {
        assert_eq!(relative_ticks(Encoder::TwosComplement, 1), 1);
        assert_eq!(relative_ticks(Encoder::TwosComplement, 5), 5);
        assert_eq!(relative_ticks(Encoder::TwosComplement, 127), -1);
        assert_eq!(relative_ticks(Encoder::TwosComplement, 123), -5);
        assert_eq!(relative_ticks(Encoder::Offset64, 65), 1);
        assert_eq!(relative_ticks(Encoder::Offset64, 63), -1);
        assert_eq!(relative_ticks(Encoder::Offset64, 64), 0);
        assert_eq!(relative_ticks(Encoder::SignBit, 1), 1);
        assert_eq!(relative_ticks(Encoder::SignBit, 65), -1);
        assert_eq!(relative_ticks(Encoder::SignBit, 70), -6);
    }

    #[test]
    fn relative_encoder_adjusts_with_step_and_invert() {
        let mut b = param(ControlKind::Cc, Some(10));
        b.encoder = Encoder::Offset64;
        b.step = Some(0.01);
        let mut st = BindingState::default();
        let o = b.eval(&mut st, &cc(10, 67), None).unwrap();
        assert_eq!(o.coalesce, Coalesce::Sum);
        match o.action {
            Action::AdjustParam { key, delta } => {
                assert_eq!(key, "noise_scale");
                assert!((delta - 0.03).abs() < 1e-12);
            }
            a => panic!("{a:?}"),
        }
        b.invert = true;
        match b.eval(&mut st, &cc(10, 63), None).unwrap().action {
            Action::AdjustParam { delta, .. } => assert!((delta - 0.01).abs() < 1e-12),
            a => panic!("{a:?}"),
        }
        assert!(b.eval(&mut st, &cc(10, 64), None).is_none(), "no motion");
        // Default step: 1/100 of the range.
        b.step = None;
        b.invert = false;
        b.range = Some((0.0, 2.0));
        match b.eval(&mut st, &cc(10, 65), None).unwrap().action {
            Action::AdjustParam { delta, .. } => assert!((delta - 0.02).abs() < 1e-12),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn fourteen_bit_pairs_combine_msb_and_lsb() {
        let b = param(ControlKind::Cc14, Some(1));
        let mut st = BindingState::default();
        assert!(b.matches(&cc(1, 0)) && b.matches(&cc(33, 0)) && !b.matches(&cc(2, 0)));
        // LSB before any MSB: nothing yet.
        assert!(b.eval(&mut st, &cc(33, 5), None).is_none());
        let v = set_value(b.eval(&mut st, &cc(1, 64), None));
        assert!((v - 8192.0 / 16383.0).abs() < 1e-9);
        let v = set_value(b.eval(&mut st, &cc(33, 127), None));
        assert!((v - 8319.0 / 16383.0).abs() < 1e-9);
        let v = set_value(b.eval(&mut st, &cc(1, 127), None));
        assert!((v - 16256.0 / 16383.0).abs() < 1e-9, "new MSB resets LSB");
        let v = set_value(b.eval(&mut st, &cc(33, 127), None));
        assert_eq!(v, 1.0);
    }

    #[test]
    fn fourteen_bit_with_an_explicit_lsb_and_a_channel() {
        let mut b = param(ControlKind::Cc14, Some(7));
        b.lsb = 40;
        b.channel = Some(3);
        let on3 = |cc, value| MidiMsg::Cc {
            channel: 3,
            cc,
            value,
        };
        assert!(b.matches(&on3(40, 0)) && b.matches(&on3(7, 0)));
        assert!(!b.matches(&on3(39, 0)), "default LSB (7 + 32) is not used");
        assert!(!b.matches(&cc(40, 0)), "other channel");
        let mut st = BindingState::default();
        b.eval(&mut st, &on3(7, 127), None);
        assert_eq!(set_value(b.eval(&mut st, &on3(40, 127), None)), 1.0);
    }

    #[test]
    fn inverted_lists_run_backwards() {
        let mut b = param(ControlKind::Cc, Some(3));
        b.target = Target::List {
            list: ListKind::Prompt,
            count: Some(2),
        };
        b.invert = true;
        let mut st = BindingState::default();
        assert_eq!(
            b.eval(&mut st, &cc(3, 0), None).unwrap().action,
            Action::SelectPrompt { index: 1 }
        );
        b.encoder = Encoder::SignBit;
        assert_eq!(
            b.eval(&mut st, &cc(3, 1), None).unwrap().action,
            Action::PromptPrev
        );
    }

    #[test]
    fn pitch_bend_is_a_14_bit_position() {
        let mut b = param(ControlKind::PitchBend, None);
        b.range = Some((-1.0, 1.0));
        let mut st = BindingState::default();
        let msg = MidiMsg::PitchBend {
            channel: 0,
            value: 16383,
        };
        assert!(b.matches(&msg));
        assert_eq!(set_value(b.eval(&mut st, &msg, None)), 1.0);
        let v = set_value(b.eval(
            &mut st,
            &MidiMsg::PitchBend {
                channel: 0,
                value: 0,
            },
            None,
        ));
        assert_eq!(v, -1.0);
    }

    #[test]
    fn soft_takeover_waits_until_the_fader_meets_the_value() {
        let mut b = param(ControlKind::Cc, Some(1));
        b.soft_takeover = true;
        let mut st = BindingState::default();
        // Parameter sits at 0.5 (set by keys); fader starts at 0.1 and moves up.
        assert!(b.eval(&mut st, &cc(1, 13), cur(0.5, false)).is_none());
        assert!(b.eval(&mut st, &cc(1, 40), cur(0.5, false)).is_none());
        // Jumps over 0.5 (40 → 80): crossing picks up.
        let v = set_value(b.eval(&mut st, &cc(1, 80), cur(0.5, false)));
        assert!((v - 80.0 / 127.0).abs() < 1e-9);
        assert!(st.picked_up);
        // Now follows (the engine shows our value, set by MIDI).
        assert!(b.eval(&mut st, &cc(1, 20), cur(v, true)).is_some());
        // The keyboard moves the parameter to 0.9: pickup lost until the fader meets it.
        assert!(b.eval(&mut st, &cc(1, 21), cur(0.9, false)).is_none());
        assert!(!st.picked_up);
        // Within tolerance picks up without crossing.
        assert!(b.eval(&mut st, &cc(1, 115), cur(0.9, false)).is_some());
    }

    #[test]
    fn soft_takeover_from_above_and_without_a_known_value() {
        let mut b = param(ControlKind::Cc, Some(1));
        b.soft_takeover = true;
        let mut st = BindingState::default();
        assert!(b.eval(&mut st, &cc(1, 120), cur(0.2, false)).is_none());
        assert!(b.eval(&mut st, &cc(1, 60), cur(0.2, false)).is_none());
        assert!(b.eval(&mut st, &cc(1, 10), cur(0.2, false)).is_some());
        let mut st = BindingState::default();
        assert!(
            b.eval(&mut st, &cc(1, 100), None).is_some(),
            "nothing to protect"
        );
        // Without soft takeover the first message jumps.
        b.soft_takeover = false;
        let mut st = BindingState::default();
        assert!(b.eval(&mut st, &cc(1, 120), cur(0.2, false)).is_some());
    }

    fn action_binding(mode: ButtonMode, on_: Action, off_: Option<Action>) -> MidiBinding {
        MidiBinding {
            mode,
            target: Target::Action { on: on_, off: off_ },
            ..param(ControlKind::Note, Some(36))
        }
    }

    #[test]
    fn note_trigger_fires_on_press_only() {
        let b = action_binding(ButtonMode::Trigger, Action::Panic, None);
        let mut st = BindingState::default();
        let o = b.eval(&mut st, &on(36), None).unwrap();
        assert_eq!(o.action, Action::Panic);
        assert_eq!(o.coalesce, Coalesce::Never);
        assert!(b.eval(&mut st, &off(36), None).is_none());
        assert!(
            b.eval(&mut st, &on(36), None).is_some(),
            "every press fires"
        );
    }

    #[test]
    fn note_hold_sends_on_and_off() {
        let b = action_binding(ButtonMode::Hold, Action::Panic, Some(Action::ReleasePanic));
        let mut st = BindingState::default();
        assert_eq!(
            b.eval(&mut st, &on(36), None).unwrap().action,
            Action::Panic
        );
        assert_eq!(
            b.eval(&mut st, &off(36), None).unwrap().action,
            Action::ReleasePanic
        );
    }

    #[test]
    fn note_toggle_alternates_and_param_buttons_use_range_ends() {
        let b = action_binding(ButtonMode::Toggle, Action::Pause, Some(Action::Resume));
        let mut st = BindingState::default();
        assert_eq!(
            b.eval(&mut st, &on(36), None).unwrap().action,
            Action::Pause
        );
        assert!(b.eval(&mut st, &off(36), None).is_none());
        assert_eq!(
            b.eval(&mut st, &on(36), None).unwrap().action,
            Action::Resume
        );
        // Toggle without off action repeats the action (e.g. toggle_mapping).
        let t = Action::ToggleMapping { name: "m".into() };
        let b = action_binding(ButtonMode::Toggle, t.clone(), None);
        let mut st = BindingState::default();
        assert_eq!(b.eval(&mut st, &on(36), None).unwrap().action, t);
        assert_eq!(b.eval(&mut st, &on(36), None).unwrap().action, t);

        let mut p = param(ControlKind::Note, Some(36));
        p.mode = ButtonMode::Hold;
        p.range = Some((0.2, 0.8));
        let mut st = BindingState::default();
        assert_eq!(set_value(p.eval(&mut st, &on(36), None)), 0.8);
        assert_eq!(set_value(p.eval(&mut st, &off(36), None)), 0.2);
        p.invert = true;
        assert_eq!(set_value(p.eval(&mut st, &on(36), None)), 0.2);
    }

    #[test]
    fn cc_buttons_act_on_edges() {
        let mut b = action_binding(ButtonMode::Trigger, Action::ResetCache, None);
        b.kind = ControlKind::Cc;
        b.number = Some(64);
        let mut st = BindingState::default();
        assert!(b.eval(&mut st, &cc(64, 127), None).is_some());
        assert!(b.eval(&mut st, &cc(64, 127), None).is_none(), "held");
        assert!(b.eval(&mut st, &cc(64, 0), None).is_none());
        assert!(b.eval(&mut st, &cc(64, 100), None).is_some());
    }

    #[test]
    fn lists_select_by_position_step_by_encoder_and_program() {
        let mut b = param(ControlKind::Cc, Some(3));
        b.target = Target::List {
            list: ListKind::Theme,
            count: Some(4),
        };
        let mut st = BindingState::default();
        assert_eq!(
            b.eval(&mut st, &cc(3, 0), None).unwrap().action,
            Action::SelectTheme { index: 0 }
        );
        assert!(b.eval(&mut st, &cc(3, 10), None).is_none(), "same entry");
        assert_eq!(
            b.eval(&mut st, &cc(3, 127), None).unwrap().action,
            Action::SelectTheme { index: 3 }
        );
        b.encoder = Encoder::TwosComplement;
        assert_eq!(
            b.eval(&mut st, &cc(3, 127), None).unwrap().action,
            Action::ThemePrev
        );
        assert_eq!(
            b.eval(&mut st, &cc(3, 1), None).unwrap().action,
            Action::ThemeNext
        );
        let mut p = param(ControlKind::Program, None);
        p.target = Target::List {
            list: ListKind::Prompt,
            count: Some(3),
        };
        let prog = |n| MidiMsg::Program {
            channel: 0,
            program: n,
        };
        assert_eq!(
            p.eval(&mut st, &prog(2), None).unwrap().action,
            Action::SelectPrompt { index: 2 }
        );
        assert!(p.eval(&mut st, &prog(3), None).is_none(), "beyond count");
        // A program binding with a number fires its action.
        let mut a = action_binding(ButtonMode::Trigger, Action::ThemeNext, None);
        a.kind = ControlKind::Program;
        a.number = Some(9);
        assert!(a.matches(&prog(9)) && !a.matches(&prog(8)));
        assert_eq!(
            a.eval(&mut st, &prog(9), None).unwrap().action,
            Action::ThemeNext
        );
        // A note stepping a list.
        let mut n = param(ControlKind::Note, Some(40));
        n.target = Target::List {
            list: ListKind::Prompt,
            count: None,
        };
        assert_eq!(
            n.eval(&mut st, &on(40), None).unwrap().action,
            Action::PromptNext
        );
    }

    #[test]
    fn device_patterns() {
        assert!(device_matches("nanoKONTROL", "nanoKONTROL2 MIDI 1"));
        assert!(device_matches("nano*", "NANOkontrol2"));
        assert!(device_matches("*MIDI ?", "nanoKONTROL2 MIDI 1"));
        assert!(!device_matches("*MIDI ?", "nanoKONTROL2 MIDI 12"));
        assert!(!device_matches("launch*", "nanoKONTROL2"));
        assert!(device_matches("*", "anything"));
    }
}
