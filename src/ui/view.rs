//! One dashboard's own view: the keymap resolves a key as always; an action that only changes
//! what this dashboard shows (help, the log view, the prompt editor, the preview overlay, their
//! paging) is applied here, and only show-changing actions go on to the engine. Sending the
//! editor's draft is a show action; the draft itself stays here.

use crate::core::action::Action;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::Mode;
use crate::core::xfade::Slot;
use crate::ui::render::ViewState;

impl ViewState {
    /// Applies a view action (`Action::is_view`, or `cancel`) to this dashboard. `snap` is
    /// what it shows now: the editor starts from its text.
    pub(crate) fn apply(&mut self, action: &Action, snap: &UiSnapshot) {
        match action {
            Action::ToggleHelp => {
                self.help_page = 0;
                self.mode = if self.mode == Mode::Help {
                    Mode::Normal
                } else {
                    Mode::Help
                };
            }
            Action::ToggleLog => {
                self.log_scroll = 0;
                self.mode = if self.mode == Mode::Log {
                    Mode::Normal
                } else {
                    Mode::Log
                };
            }
            Action::TogglePreview => self.preview_open = !self.preview_open,
            Action::EditPrompt { slot } => {
                // Again while editing a slot (tab): the other slot; with the crossfader engaged
                // the nearer one; otherwise the live prompt.
                let engaged = snap.xfade.as_ref();
                let slot = match (slot, self.mode, self.edit_slot) {
                    (Some(s), _, _) => Some(*s),
                    (None, Mode::PromptEdit, Some(s)) => Some(s.other()),
                    (None, _, _) => {
                        engaged.map(|x| if x.position > 0.5 { Slot::B } else { Slot::A })
                    }
                };
                self.edit_slot = slot;
                self.mode = Mode::PromptEdit;
                self.edit_buffer = snap.edit_text_for(slot).to_string();
            }
            Action::Cancel => self.close(),
            _ => {}
        }
    }

    /// Back to the panels: overlays closed, the draft dropped.
    pub(crate) fn close(&mut self) {
        self.mode = Mode::Normal;
        self.help_page = 0;
        self.log_scroll = 0;
        self.edit_slot = None;
        self.edit_buffer.clear();
    }

    /// The show action that sends the draft (enter in the editor): the slot's parts when a
    /// crossfader slot is edited, the live prompt otherwise. The editor closes, unless the
    /// draft is empty (the engine says so and the editor stays for another try).
    pub(crate) fn send_draft(&mut self, snap: &UiSnapshot) -> Action {
        let text = std::mem::take(&mut self.edit_buffer);
        let empty = text.trim().is_empty();
        let action = match self.edit_slot.filter(|_| snap.xfade.is_some()) {
            Some(slot) => Action::SetPromptSlot {
                slot,
                text: Some(text),
                index: None,
            },
            None => Action::SetPrompt { text, raw: false },
        };
        if !empty {
            self.close();
        }
        action
    }

    /// Catches up with the deck: view actions sent to every dashboard (a MIDI binding, a
    /// script) since the last snapshot are applied; a crossfader that was let go leaves the
    /// editor on the live prompt.
    pub(crate) fn follow(&mut self, snap: &UiSnapshot) {
        let va = &snap.ui.view_actions;
        if va.serial < self.view_seen {
            // Another deck (a restart behind an attached dashboard): start counting again.
            self.view_seen = 0;
        }
        if va.serial > self.view_seen {
            let new: Vec<Action> = va.since(self.view_seen).cloned().collect();
            self.view_seen = va.serial;
            for a in &new {
                self.apply(a, snap);
            }
        }
        if self.edit_slot.is_some() && snap.xfade.is_none() {
            self.edit_slot = None;
        }
    }

    /// A view that starts with what the deck has already done (older view actions are not
    /// replayed on a dashboard that attaches later).
    pub(crate) fn starting_at(snap: &UiSnapshot) -> ViewState {
        ViewState {
            view_seen: snap.ui.view_actions.serial,
            ..ViewState::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::action::ActionSource;
    use crate::core::msg::Msg;
    use crate::core::state::{AppState, CoreSettings};
    use crate::core::update::update;
    use std::time::Duration;

    fn snap_of(state: &AppState) -> UiSnapshot {
        UiSnapshot::of(state, Duration::from_secs(1))
    }

    #[test]
    fn two_views_of_one_deck_open_their_own_overlays() {
        let state = AppState::new(CoreSettings::default());
        let snap = snap_of(&state);
        let (mut a, mut b) = (ViewState::default(), ViewState::default());
        a.apply(&Action::ToggleHelp, &snap);
        assert_eq!((a.mode, b.mode), (Mode::Help, Mode::Normal));
        b.apply(&Action::EditPrompt { slot: None }, &snap);
        assert_eq!(
            b.edit_buffer, snap.edit_text,
            "the editor starts from the live prompt"
        );
        b.edit_buffer.push_str(" at dusk");
        let sent = b.send_draft(&snap);
        assert_eq!(
            sent,
            Action::SetPrompt {
                text: format!("{} at dusk", snap.edit_text),
                raw: false
            }
        );
        assert_eq!(b.mode, Mode::Normal);
        assert_eq!(a.mode, Mode::Help);
        a.apply(&Action::Cancel, &snap);
        assert_eq!(a.mode, Mode::Normal);
        let mut empty = ViewState::default();
        empty.apply(&Action::EditPrompt { slot: None }, &snap);
        empty.edit_buffer.clear();
        let _ = empty.send_draft(&snap);
        assert_eq!(
            empty.mode,
            Mode::PromptEdit,
            "an empty draft keeps the editor"
        );
    }

    #[test]
    fn a_slot_draft_goes_to_its_slot_and_midi_view_actions_reach_every_view() {
        let mut state = AppState::new(CoreSettings::default());
        update(&mut state, Msg::Started, Duration::ZERO);
        let act = |state: &mut AppState, action: Action, source: ActionSource, t: u64| {
            update(
                state,
                Msg::Action { action, source },
                Duration::from_millis(t),
            );
        };
        act(
            &mut state,
            Action::SetPromptSlot {
                slot: Slot::B,
                text: Some("sun | moon".into()),
                index: None,
            },
            ActionSource::Keyboard,
            10,
        );
        let snap = snap_of(&state);
        let mut v = ViewState::starting_at(&snap);
        v.apply(
            &Action::EditPrompt {
                slot: Some(Slot::B),
            },
            &snap,
        );
        assert_eq!(v.edit_buffer, "sun | moon");
        v.apply(&Action::EditPrompt { slot: None }, &snap);
        assert_eq!(v.edit_slot, Some(Slot::A), "tab: the other slot");
        v.apply(&Action::EditPrompt { slot: None }, &snap);
        v.edit_buffer = "stars".into();
        assert_eq!(
            v.send_draft(&snap),
            Action::SetPromptSlot {
                slot: Slot::B,
                text: Some("stars".into()),
                index: None
            }
        );

        let mut w = ViewState::starting_at(&snap);
        act(&mut state, Action::ToggleHelp, ActionSource::Midi, 20);
        act(&mut state, Action::TogglePreview, ActionSource::Script, 30);
        let snap = snap_of(&state);
        v.follow(&snap);
        w.follow(&snap);
        for view in [&v, &w] {
            assert_eq!((view.mode, view.preview_open), (Mode::Help, true));
        }
        w.follow(&snap);
        assert_eq!(w.mode, Mode::Help, "each one is applied once");
        let late = ViewState::starting_at(&snap);
        assert_eq!(late.mode, Mode::Normal, "not replayed on a later dashboard");
    }
}
