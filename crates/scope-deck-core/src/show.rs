//! Show mode (key lock): during a show, stray typing must not reconnect (seconds of lost
//! video), quit, start MIDI learn or toggle the server's outputs. In show mode every key that
//! performs acts at once; a dangerous one only arms a confirmation, and the same action again
//! within [`CONFIRM_WINDOW`] carries it out. Only the keyboard is gated: MIDI bindings and
//! scripts mean what they send.

use std::time::Duration;

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::effect::Effect;
use crate::state::{AppState, Level};

/// How long a show-mode confirmation waits for the second press.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(3);

/// Actions that cost the show something when pressed by mistake.
pub fn is_dangerous(a: &Action) -> bool {
    matches!(
        a,
        Action::Quit
            | Action::Reconnect
            | Action::Learn
            | Action::ToggleScopeOutput { .. }
            | Action::SetScopeOutput { .. }
            | Action::DownloadModels
            | Action::ConfirmReload
            | Action::UploadRefImages
    )
}

/// Lets `action` through, or holds it for confirmation in show mode (`None`). A confirmed
/// quit skips the streaming quit confirmation: the performer already pressed twice.
pub fn gate(
    state: &mut AppState,
    action: Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> Option<Action> {
    let c = &mut state.controls;
    if !c.show_mode || source != ActionSource::Keyboard || !is_dangerous(&action) {
        return Some(action);
    }
    let pending = c
        .confirm
        .take()
        .filter(|(_, at)| now.saturating_sub(*at) <= CONFIRM_WINDOW);
    if pending.is_some_and(|(a, _)| a == action) {
        return Some(if action == Action::Quit {
            Action::ForceQuit
        } else {
            action
        });
    }
    let what = action.describe();
    c.confirm = Some((action, now));
    notice(
        state,
        fx,
        Level::Warn,
        format!("show mode: press again within 3 s to {what}"),
        now,
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effect::Event;
    use crate::msg::Msg;
    use crate::state::{CoreSettings, Lifecycle};
    use crate::transport::types::TransportCmd;
    use crate::update::update;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn key(s: &mut AppState, a: Action, t: u64) -> Vec<Effect> {
        update(s, Msg::key(a), ms(t))
    }

    fn reconnects(fx: &[Effect]) -> usize {
        fx.iter()
            .filter(|e| matches!(e, Effect::Transport(TransportCmd::Reconnect)))
            .count()
    }

    #[test]
    fn show_mode_asks_twice_for_reconnect_and_lets_performance_keys_through() {
        let mut s = AppState::new(CoreSettings::default());
        update(&mut s, Msg::Started, ms(0));
        key(&mut s, Action::ToggleShowMode, 10);
        assert!(s.controls.show_mode);
        let fx = key(&mut s, Action::Reconnect, 100);
        assert_eq!(reconnects(&fx), 0, "held");
        assert!(fx.iter().any(|e| matches!(e,
            Effect::Emit(Event::Notice { message, .. }) if message.contains("press again"))));
        // Another key in between does not cancel the wait; performance keys act at once.
        let fx = key(&mut s, Action::ResetCache, 200);
        assert!(!fx.is_empty());
        assert_eq!(reconnects(&key(&mut s, Action::Reconnect, 300)), 1);
        // Armed again only by the next press.
        assert_eq!(reconnects(&key(&mut s, Action::Reconnect, 400)), 0);
        // Too late (armed at 400): asks again, then the next press acts.
        assert_eq!(reconnects(&key(&mut s, Action::Reconnect, 5000)), 0);
        assert_eq!(reconnects(&key(&mut s, Action::Reconnect, 5100)), 1);
        // Scripts are not gated.
        let fx = update(
            &mut s,
            Msg::Action {
                action: Action::Reconnect,
                source: ActionSource::Script,
            },
            ms(6000),
        );
        assert_eq!(reconnects(&fx), 1);
        // Off again: one press acts.
        key(&mut s, Action::ToggleShowMode, 7000);
        assert_eq!(reconnects(&key(&mut s, Action::Reconnect, 7100)), 1);
    }

    #[test]
    fn a_confirmed_quit_in_show_mode_stops_at_once() {
        let mut s = AppState::new(CoreSettings::default());
        update(&mut s, Msg::Started, ms(0));
        key(&mut s, Action::ToggleShowMode, 10);
        key(&mut s, Action::Quit, 100);
        assert_eq!(s.lifecycle, Lifecycle::Running);
        key(&mut s, Action::Quit, 200);
        assert_eq!(s.lifecycle, Lifecycle::ShuttingDown);
    }
}
