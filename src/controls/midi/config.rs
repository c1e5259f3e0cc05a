//! The MIDI part of a keymap file: `[midi_in]`, `[[midi]]` bindings and `[[feedback]]` outputs,
//! parsed from raw serde structs and validated with file:line:key diagnostics.

use serde::Deserialize;

use crate::config::diagnostics::{ConfigError, SourceDoc};
use crate::controls::keymap::parse_action_value;
use crate::controls::midi::binding::{
    ButtonMode, ControlKind, Curve, Encoder, ListKind, MidiBinding, Target,
};
use crate::controls::midi::feedback::{Feedback, FeedbackSource, ThemeRef};

/// `[midi_in]`: which input ports to open and which one is the clock.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMidiIn {
    /// Input-port name patterns to open (default: every port when there are bindings).
    #[serde(default)]
    pub(crate) devices: Option<Vec<String>>,
    /// Follow MIDI clock from ports matching this pattern.
    #[serde(default)]
    pub(crate) clock: Option<String>,
}

/// One `[[midi]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMidiBinding {
    device: Option<String>,
    #[serde(rename = "type")]
    kind: ControlKind,
    channel: Option<i64>,
    cc: Option<i64>,
    lsb: Option<i64>,
    note: Option<i64>,
    program: Option<i64>,
    encoder: Option<Encoder>,
    mode: Option<ButtonMode>,
    param: Option<String>,
    action: Option<toml::Value>,
    off_action: Option<toml::Value>,
    list: Option<ListKind>,
    count: Option<i64>,
    range: Option<Vec<f64>>,
    #[serde(default)]
    curve: Curve,
    #[serde(default)]
    invert: bool,
    #[serde(default)]
    soft_takeover: bool,
    step: Option<f64>,
}

/// One `[[feedback]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFeedback {
    device: String,
    source: FeedbackSource,
    channel: Option<i64>,
    note: Option<i64>,
    cc: Option<i64>,
    param: Option<String>,
    theme: Option<toml::Value>,
    prompt: Option<i64>,
    mapping: Option<String>,
    on: Option<i64>,
    off: Option<i64>,
}

/// Everything MIDI a keymap declares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MidiConfig {
    /// Input-port patterns to open.
    pub(crate) inputs: Vec<String>,
    /// Clock port pattern.
    pub(crate) clock: Option<String>,
    /// Bindings in file order.
    pub bindings: Vec<MidiBinding>,
    /// Feedback outputs in file order.
    pub(crate) feedback: Vec<Feedback>,
}

impl MidiConfig {
    /// True when nothing MIDI is configured (no port is opened then).
    pub(crate) fn is_empty(&self) -> bool {
        self.inputs.is_empty()
            && self.bindings.is_empty()
            && self.feedback.is_empty()
            && self.clock.is_none()
    }
}

fn byte(
    doc: &SourceDoc,
    path: &str,
    v: Option<i64>,
    max: i64,
    errors: &mut Vec<ConfigError>,
) -> Option<u8> {
    let v = v?;
    if (0..=max).contains(&v) {
        u8::try_from(v).ok()
    } else {
        errors.push(doc.error_at(path, format!("must be 0..={max}"), Some(v.to_string())));
        None
    }
}

fn channel(
    doc: &SourceDoc,
    path: &str,
    v: Option<i64>,
    errors: &mut Vec<ConfigError>,
) -> Option<u8> {
    let v = v?;
    if (1..=16).contains(&v) {
        u8::try_from(v - 1).ok()
    } else {
        errors.push(doc.error_at(
            path,
            "MIDI channels are 1..=16 (as printed on controllers)",
            Some(v.to_string()),
        ));
        None
    }
}

fn pattern(doc: &SourceDoc, path: &str, p: &str, errors: &mut Vec<ConfigError>) {
    if p.trim().is_empty() {
        errors.push(doc.error_at(
            path,
            "empty device pattern; leave the key out to match every port",
            None,
        ));
    }
}

/// Validates `[midi_in]`, `[[midi]]` and `[[feedback]]`; pushes located errors.
pub(crate) fn validate(
    doc: &SourceDoc,
    midi_in: &RawMidiIn,
    raw: &[RawMidiBinding],
    feedback: &[RawFeedback],
    errors: &mut Vec<ConfigError>,
) -> MidiConfig {
    let mut out = MidiConfig::default();
    if let Some(devs) = &midi_in.devices {
        for (i, d) in devs.iter().enumerate() {
            pattern(doc, &format!("midi_in.devices[{i}]"), d, errors);
        }
    }
    if let Some(c) = &midi_in.clock {
        pattern(doc, "midi_in.clock", c, errors);
    }
    for (i, r) in raw.iter().enumerate() {
        let before = errors.len();
        let p = |k: &str| format!("midi[{i}].{k}");
        let at = format!("midi[{i}]");
        if let Some(d) = &r.device {
            pattern(doc, &p("device"), d, errors);
        }
        let ch = channel(doc, &p("channel"), r.channel, errors);
        // The control number.
        let (number_key, number) = match r.kind {
            ControlKind::Cc => ("cc", byte(doc, &p("cc"), r.cc, 127, errors)),
            ControlKind::Cc14 => ("cc", byte(doc, &p("cc"), r.cc, 31, errors)),
            ControlKind::Note => ("note", byte(doc, &p("note"), r.note, 127, errors)),
            ControlKind::Program => ("program", byte(doc, &p("program"), r.program, 127, errors)),
            ControlKind::PitchBend => ("", None),
        };
        let required = matches!(
            r.kind,
            ControlKind::Cc | ControlKind::Cc14 | ControlKind::Note
        );
        if required && number.is_none() && errors.len() == before {
            errors.push(doc.error_at(
                &at,
                format!("a `{}` binding needs `{number_key}`", kind_name(r.kind)),
                None,
            ));
        }
        for (key, present) in [
            ("cc", r.cc.is_some()),
            ("note", r.note.is_some()),
            ("program", r.program.is_some()),
        ] {
            if present && key != number_key {
                errors.push(doc.error_at(
                    &p(key),
                    format!(
                        "`{key}` does not apply to `type = \"{}\"`",
                        kind_name(r.kind)
                    ),
                    None,
                ));
            }
        }
        let lsb = match (r.kind, r.lsb) {
            (ControlKind::Cc14, l) => byte(doc, &p("lsb"), l, 127, errors)
                .or(number.map(|n| n + 32))
                .unwrap_or(32),
            (_, Some(_)) => {
                errors.push(doc.error_at(&p("lsb"), "`lsb` only applies to `cc14`", None));
                0
            }
            _ => 0,
        };
        // Target: exactly one of param / action / list.
        let targets = [r.param.is_some(), r.action.is_some(), r.list.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if targets != 1 {
            errors.push(doc.error_at(
                &at,
                if targets == 0 {
                    "needs a target: `param`, `action` or `list`"
                } else {
                    "give only one target: `param`, `action` or `list`"
                },
                None,
            ));
        }
        let on = r.action.as_ref().and_then(|v| match parse_action_value(v) {
            Ok(a) => Some(a),
            Err(e) => {
                errors.push(doc.error_at(&p("action"), e, None));
                None
            }
        });
        let off = r
            .off_action
            .as_ref()
            .and_then(|v| match parse_action_value(v) {
                Ok(a) => Some(a),
                Err(e) => {
                    errors.push(doc.error_at(&p("off_action"), e, None));
                    None
                }
            });
        let encoder = r.encoder.unwrap_or_default();
        if encoder != Encoder::Absolute {
            if r.kind != ControlKind::Cc {
                errors.push(doc.error_at(
                    &p("encoder"),
                    "relative encoders are 7-bit CCs: use `type = \"cc\"`",
                    None,
                ));
            } else if r.action.is_some() {
                errors.push(doc.error_at(
                    &p("encoder"),
                    "a relative encoder drives a `param` or a `list`, not an `action`",
                    None,
                ));
            }
        }
        let is_button = r.kind == ControlKind::Note
            || (r.kind == ControlKind::Cc && encoder == Encoder::Absolute && r.action.is_some());
        let mode = r.mode.unwrap_or_default();
        if r.mode.is_some() && !is_button {
            errors.push(doc.error_at(
                &p("mode"),
                "`mode` applies to buttons: notes, or CCs bound to an `action`",
                None,
            ));
        }
        if r.off_action.is_some() && (r.action.is_none() || mode == ButtonMode::Trigger) {
            errors.push(doc.error_at(
                &p("off_action"),
                "`off_action` needs an `action` and `mode = \"toggle\"` or `\"hold\"`",
                None,
            ));
        }
        if mode == ButtonMode::Hold && r.action.is_some() && r.off_action.is_none() {
            errors.push(doc.error_at(
                &p("mode"),
                "`hold` with an `action` needs `off_action` (what happens on release)",
                None,
            ));
        }
        let range = match &r.range {
            None => None,
            Some(v) if v.len() == 2 && v.iter().all(|x| x.is_finite()) && v[0] != v[1] => {
                Some((v[0], v[1]))
            }
            Some(_) => {
                errors.push(doc.error_at(
                    &p("range"),
                    "expected two different finite numbers: [low, high]",
                    None,
                ));
                None
            }
        };
        if let Some(s) = r.step {
            if !(s.is_finite() && s > 0.0) {
                errors.push(doc.error_at(&p("step"), "must be a positive number", None));
            } else if encoder == Encoder::Absolute {
                errors.push(doc.error_at(
                    &p("step"),
                    "`step` is the change per detent of a relative `encoder`",
                    None,
                ));
            }
        }
        let count = match r.count {
            None => None,
            Some(n) if n >= 1 => usize::try_from(n).ok(),
            Some(n) => {
                errors.push(doc.error_at(&p("count"), "must be at least 1", Some(n.to_string())));
                None
            }
        };
        if r.count.is_some() && r.list.is_none() {
            errors.push(doc.error_at(&p("count"), "`count` applies to `list` targets", None));
        }
        let absolute_select = r.list.is_some()
            && encoder == Encoder::Absolute
            && matches!(
                r.kind,
                ControlKind::Cc | ControlKind::Cc14 | ControlKind::PitchBend
            );
        if absolute_select && r.count.is_none() {
            errors.push(doc.error_at(
                &p("list"),
                "selecting from a list with a fader or knob needs `count` (how many entries its travel covers)",
                None,
            ));
        }
        if r.kind == ControlKind::Program && r.program.is_none() && r.list.is_none() {
            errors.push(doc.error_at(
                &at,
                "a program binding without `program = N` selects from a `list`",
                None,
            ));
        }
        if let Some(name) = &r.param {
            if name.trim().is_empty() {
                errors.push(doc.error_at(&p("param"), "must name a parameter", None));
            }
        }
        if errors.len() != before {
            continue;
        }
        let target = if let Some(k) = &r.param {
            Target::Param(k.clone())
        } else if let Some(list) = r.list {
            Target::List { list, count }
        } else if let Some(on) = on {
            Target::Action { on, off }
        } else {
            continue;
        };
        out.bindings.push(MidiBinding {
            device: r.device.clone(),
            channel: ch,
            kind: r.kind,
            number,
            lsb,
            encoder,
            mode,
            target,
            range,
            curve: r.curve,
            invert: r.invert,
            soft_takeover: r.soft_takeover,
            step: r.step,
        });
    }
    for (i, f) in feedback.iter().enumerate() {
        let before = errors.len();
        let p = |k: &str| format!("feedback[{i}].{k}");
        pattern(doc, &p("device"), &f.device, errors);
        let ch = channel(doc, &p("channel"), f.channel, errors).unwrap_or(0);
        let note = byte(doc, &p("note"), f.note, 127, errors);
        let cc = byte(doc, &p("cc"), f.cc, 127, errors);
        let on = byte(doc, &p("on"), f.on, 127, errors).unwrap_or(127);
        let off = byte(doc, &p("off"), f.off, 127, errors).unwrap_or(0);
        if f.note.is_some() == f.cc.is_some() {
            errors.push(doc.error_at(
                &format!("feedback[{i}]"),
                "give exactly one of `note` or `cc` to light",
                None,
            ));
        }
        // Each of these keys belongs to one source, which needs it.
        for (key, source, given, example) in [
            (
                "param",
                FeedbackSource::Param,
                f.param.is_some(),
                "\"<key>\"",
            ),
            (
                "theme",
                FeedbackSource::Theme,
                f.theme.is_some(),
                "\"<name>\"` or `theme = <0-based index>",
            ),
            (
                "prompt",
                FeedbackSource::Prompt,
                f.prompt.is_some(),
                "<0-based index>",
            ),
            (
                "mapping",
                FeedbackSource::Mapping,
                f.mapping.is_some(),
                "\"<mapping or trigger name>\"` or `mapping = \"*\"",
            ),
        ] {
            if f.source == source && !given {
                errors.push(doc.error_at(
                    &p("source"),
                    format!("`source = \"{key}\"` needs `{key} = {example}`"),
                    None,
                ));
            } else if f.source != source && given {
                errors.push(doc.error_at(
                    &p(key),
                    format!("`{key}` only applies to `source = \"{key}\"`"),
                    None,
                ));
            }
        }
        let theme = match &f.theme {
            None => None,
            Some(toml::Value::String(n)) if !n.trim().is_empty() => {
                Some(ThemeRef::Name(n.trim().to_string()))
            }
            Some(toml::Value::Integer(i)) if *i >= 0 => {
                usize::try_from(*i).ok().map(ThemeRef::Index)
            }
            Some(other) => {
                errors.push(doc.error_at(
                    &p("theme"),
                    "a theme name (`\"cosmic-voyage\"`) or its 0-based position in the theme list",
                    Some(other.to_string()),
                ));
                None
            }
        };
        let prompt = match f.prompt {
            None => None,
            Some(i) if i >= 0 => usize::try_from(i).ok(),
            Some(i) => {
                errors.push(doc.error_at(
                    &p("prompt"),
                    "a 0-based prompt number in the active theme",
                    Some(i.to_string()),
                ));
                None
            }
        };
        if f.mapping.as_deref().is_some_and(|m| m.trim().is_empty()) {
            errors.push(doc.error_at(
                &p("mapping"),
                "empty mapping name; `\"*\"` follows the whole mapping engine",
                None,
            ));
        }
        if errors.len() != before {
            continue;
        }
        out.feedback.push(Feedback {
            device: f.device.clone(),
            source: f.source,
            channel: ch,
            note,
            cc,
            param: f.param.clone(),
            theme,
            prompt,
            mapping: f.mapping.as_ref().map(|m| m.trim().to_string()),
            on,
            off,
        });
    }
    let any = !out.bindings.is_empty() || !out.feedback.is_empty() || midi_in.clock.is_some();
    out.inputs = match &midi_in.devices {
        Some(d) => d.clone(),
        None if any => vec!["*".into()],
        None => Vec::new(),
    };
    out.clock = midi_in.clock.clone();
    out
}

fn kind_name(k: ControlKind) -> &'static str {
    match k {
        ControlKind::Cc => "cc",
        ControlKind::Cc14 => "cc14",
        ControlKind::Note => "note",
        ControlKind::Program => "program",
        ControlKind::PitchBend => "pitch_bend",
    }
}

#[cfg(test)]
mod tests {
    use crate::controls::keymap::Keymap;
    use crate::controls::midi::binding::{ButtonMode, ControlKind, Encoder, ListKind, Target};
    use crate::core::action::Action;

    fn load(text: &str) -> Keymap {
        let mut errs = Vec::new();
        let km = Keymap::from_text("k.toml", "k", text, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        km.unwrap()
    }

    #[test]
    fn example_rig_parses_every_option() {
        let km = load(include_str!("../../../keymaps/examples/controller.toml"));
        let m = &km.midi;
        assert_eq!(m.inputs, vec!["nanoKONTROL*", "*Launchpad*", "TR-8*"]);
        assert_eq!(m.clock.as_deref(), Some("TR-8*"));
        assert_eq!(m.bindings.len(), 17);
        assert_eq!(m.feedback.len(), 7);
        let fader = &m.bindings[0];
        assert_eq!(fader.channel, Some(0), "channels are 1-based in files");
        assert_eq!(fader.range, Some((0.2, 1.0)));
        assert!(fader.soft_takeover);
        assert_eq!(m.bindings[1].encoder, Encoder::TwosComplement);
        assert_eq!(m.bindings[1].step, Some(0.01));
        assert_eq!(
            m.bindings[2].target,
            Target::List {
                list: ListKind::Theme,
                count: Some(8)
            }
        );
        let fine = &m.bindings[4];
        assert_eq!(fine.kind, ControlKind::Cc14);
        assert_eq!((fine.number, fine.lsb), (Some(1), 33));
        assert!(fine.invert);
        let panic = &m.bindings[6];
        assert_eq!(panic.mode, ButtonMode::Hold);
        assert_eq!(
            panic.target,
            Target::Action {
                on: Action::Panic,
                off: Some(Action::ReleasePanic)
            }
        );
        assert_eq!(
            m.bindings[10].target,
            Target::Action {
                on: Action::NudgeTempo { bpm: 0.5 },
                off: None
            }
        );
        assert_eq!(m.feedback[0].on, 5);
        assert_eq!(
            m.bindings[15].target,
            Target::Action {
                on: Action::SelectTheme { index: 1 },
                off: None
            }
        );
        use crate::controls::midi::feedback::{FeedbackSource, ThemeRef};
        assert_eq!(m.feedback[4].source, FeedbackSource::Theme);
        assert_eq!(m.feedback[4].theme, Some(ThemeRef::Name("default".into())));
        assert_eq!(m.feedback[5].theme, Some(ThemeRef::Index(1)));
        assert_eq!(m.feedback[6].mapping.as_deref(), Some("nebula-noise"));
    }

    #[test]
    fn theme_prompt_and_mapping_lights_need_their_key_and_only_theirs() {
        let km = load(
            "name = \"x\"\n[normal]\nq = \"quit\"\n\
             [[feedback]]\ndevice = \"d\"\nsource = \"prompt\"\nprompt = 2\nnote = 1\n\
             [[feedback]]\ndevice = \"d\"\nsource = \"mapping\"\nmapping = \"*\"\ncc = 3\n",
        );
        assert_eq!(km.midi.feedback[0].prompt, Some(2));
        assert_eq!(km.midi.feedback[1].mapping.as_deref(), Some("*"));
        let text = "name = \"x\"\n[normal]\nq = \"quit\"\n\
                    [[feedback]]\ndevice = \"d\"\nsource = \"theme\"\nnote = 1\n\
                    [[feedback]]\ndevice = \"d\"\nsource = \"beat\"\nmapping = \"x\"\nnote = 1\n\
                    [[feedback]]\ndevice = \"d\"\nsource = \"theme\"\ntheme = -1\nnote = 1\n\
                    [[feedback]]\ndevice = \"d\"\nsource = \"prompt\"\nprompt = -3\nnote = 1\n";
        let mut errs = Vec::new();
        assert!(Keymap::from_text("k.toml", "k", text, &mut errs).is_none());
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.line, e.key.as_str(), e.message.clone()))
            .collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].1, "feedback[0].source");
        assert!(got[0].2.contains("needs `theme = "), "{got:?}");
        assert_eq!((got[1].0, got[1].1), (11, "feedback[1].mapping"));
        assert!(got[1].2.contains("only applies to `source = \"mapping\"`"));
        assert_eq!(got[2].1, "feedback[2].theme");
        assert_eq!(got[3].1, "feedback[3].prompt");
    }

    #[test]
    fn keys_only_keymap_opens_no_ports_and_bindings_default_to_every_port() {
        let km = load("name = \"x\"\n[normal]\nq = \"quit\"\n");
        assert!(km.midi.is_empty());
        assert!(km.midi.inputs.is_empty());
        let km = load(
            "name = \"x\"\n[normal]\nq = \"quit\"\n[[midi]]\ntype = \"note\"\nnote = 1\naction = \"panic\"\n",
        );
        assert_eq!(km.midi.inputs, vec!["*"]);
        let km = load("name = \"x\"\n[normal]\nq = \"quit\"\n[midi_in]\ndevices = [\"nano*\"]\n");
        assert!(!km.midi.is_empty(), "ports opened for learn mode");
    }

    #[test]
    fn several_errors_in_one_file_are_all_reported() {
        let text = "name = \"x\"\n[normal]\nq = \"quit\"\n[[midi]]\ntype = \"cc\"\ncc = 300\nchannel = 0\nparam = \"a\"\n[[feedback]]\ndevice = \"d\"\nsource = \"beat\"\n";
        let mut errs = Vec::new();
        assert!(Keymap::from_text("k.toml", "k", text, &mut errs).is_none());
        let keys: Vec<_> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (7, "midi[0].channel"),
                (6, "midi[0].cc"),
                (9, "feedback[0]")
            ]
        );
    }
}
