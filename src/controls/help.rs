//! Help overlay data, generated from the active keymap so the overlay never lies about keys.

use crate::controls::keymap::{Keymap, ModeKey};
use crate::controls::midi::binding::{ControlKind, Encoder, ListKind, MidiBinding, Target};

/// One line of the help overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HelpRow {
    /// `normal`, `help`, `prompt_edit` or `midi`.
    pub(crate) mode: &'static str,
    /// The chord (`ctrl+c`) or MIDI control (`note 36 ch 1`).
    pub(crate) control: String,
    /// What it does.
    pub(crate) description: String,
}

fn mode_name(m: ModeKey) -> &'static str {
    match m {
        ModeKey::Normal => "normal",
        ModeKey::Help => "help",
        ModeKey::PromptEdit => "prompt_edit",
    }
}

/// A short label for a MIDI control (`cc 7 ch 2 @nano*`).
pub(crate) fn midi_control_label(b: &MidiBinding) -> String {
    let mut s = match (b.kind, b.number) {
        (ControlKind::Cc, Some(n)) => format!("cc {n}"),
        (ControlKind::Cc14, Some(n)) => format!("cc14 {n}/{}", b.lsb),
        (ControlKind::Note, Some(n)) => format!("note {n}"),
        (ControlKind::Program, Some(n)) => format!("program {n}"),
        (ControlKind::Program, None) => "program".to_string(),
        (ControlKind::PitchBend, _) => "pitch bend".to_string(),
        (_, None) => "?".to_string(),
    };
    if let Some(c) = b.channel {
        s.push_str(&format!(" ch {}", c + 1));
    }
    if let Some(d) = &b.device {
        s.push_str(&format!(" @{d}"));
    }
    s
}

/// A short description of what a MIDI binding does.
pub(crate) fn midi_description(b: &MidiBinding) -> String {
    let list = |l: ListKind| match l {
        ListKind::Theme => "theme",
        ListKind::Prompt => "prompt",
    };
    match &b.target {
        Target::Param(k) if b.encoder != Encoder::Absolute => format!("{k} ± (encoder)"),
        Target::Param(k) => {
            let mut s = k.clone();
            if let Some((lo, hi)) = b.range {
                s.push_str(&format!(" {lo}..{hi}"));
            }
            if b.soft_takeover {
                s.push_str(" (soft takeover)");
            }
            s
        }
        Target::Action { on, off: Some(off) } => format!("{} / {}", on.describe(), off.describe()),
        Target::Action { on, off: None } => on.describe(),
        Target::List { list: l, .. } if b.encoder != Encoder::Absolute => {
            format!("step {}", list(*l))
        }
        Target::List { list: l, .. } => format!("select {}", list(*l)),
    }
}

/// Every binding of the keymap as (mode, control, description) rows, keys first in file order,
/// then MIDI bindings.
pub(crate) fn help_rows(km: &Keymap) -> Vec<HelpRow> {
    let mut rows = Vec::new();
    for (mode, list) in &km.modes {
        for b in list {
            rows.push(HelpRow {
                mode: mode_name(*mode),
                control: b.chord.to_string(),
                description: b.action.describe(),
            });
        }
    }
    for b in &km.midi.bindings {
        rows.push(HelpRow {
            mode: "midi",
            control: midi_control_label(b),
            description: midi_description(b),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_keymap() {
        let text = "name = \"x\"\n[normal]\n\"q\" = \"quit\"\n\"ctrl+p\" = \"panic\"\n[help]\n\"escape\" = \"cancel\"\n[[midi]]\ntype = \"cc\"\ncc = 7\nchannel = 2\nparam = \"noise_scale\"\nrange = [0.0, 1.0]\nsoft_takeover = true\n[[midi]]\ntype = \"note\"\nnote = 36\naction = \"panic\"\n";
        let mut errs = Vec::new();
        let km = Keymap::from_text("k", "k", text, &mut errs).unwrap();
        let rows = help_rows(&km);
        let got: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.mode, r.control.as_str(), r.description.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("normal", "q", "quit"),
                ("normal", "ctrl+p", "panic"),
                ("help", "esc", "cancel"),
                ("midi", "cc 7 ch 2", "noise_scale 0..1 (soft takeover)"),
                ("midi", "note 36", "panic"),
            ]
        );
    }
}
