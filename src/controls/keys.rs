//! Key chords as written in keymaps (`ctrl+shift+up`, `?`, `space`, `f5`) and as read from the
//! terminal. Pure: parsing and matching only.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A non-character key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Named {
    /// Enter / Return.
    Enter,
    /// Escape.
    Esc,
    /// Tab.
    Tab,
    /// Shift+Tab.
    BackTab,
    /// Backspace.
    Backspace,
    /// Delete.
    Delete,
    /// Insert.
    Insert,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Function key 1..=24.
    F(u8),
}

/// The key part of a chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    /// A printable character (case matters: `A` is shift+a).
    Char(char),
    /// A named key.
    Named(Named),
}

/// A key with modifiers. Shift is folded into the character for printable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct KeyChord {
    /// The key.
    pub(crate) key: Key,
    /// Control held.
    pub(crate) ctrl: bool,
    /// Alt / Option held.
    pub(crate) alt: bool,
    /// Shift held (named keys only).
    pub(crate) shift: bool,
}

const NAMES: &[(&str, Named)] = &[
    ("enter", Named::Enter),
    ("return", Named::Enter),
    ("esc", Named::Esc),
    ("escape", Named::Esc),
    ("tab", Named::Tab),
    ("backtab", Named::BackTab),
    ("backspace", Named::Backspace),
    ("delete", Named::Delete),
    ("del", Named::Delete),
    ("insert", Named::Insert),
    ("up", Named::Up),
    ("down", Named::Down),
    ("left", Named::Left),
    ("right", Named::Right),
    ("home", Named::Home),
    ("end", Named::End),
    ("pageup", Named::PageUp),
    ("pagedown", Named::PageDown),
];

const CHAR_NAMES: &[(&str, char)] = &[
    ("space", ' '),
    ("plus", '+'),
    ("minus", '-'),
    ("period", '.'),
    ("comma", ','),
];

impl KeyChord {
    /// Parses `ctrl+alt+x`, `shift+up`, `?`, `space`, `f5`, `+` (a lone `+` is the plus key).
    pub(crate) fn parse(s: &str) -> Result<KeyChord, String> {
        if s.is_empty() {
            return Err("empty key".into());
        }
        let (mods, key) = if s == "+" {
            (Vec::new(), "+")
        } else if let Some(stripped) = s.strip_suffix("++") {
            (stripped.split('+').collect(), "+")
        } else {
            let mut parts: Vec<&str> = s.split('+').collect();
            let key = parts.pop().unwrap_or_default();
            (parts, key)
        };
        let mut chord = KeyChord {
            key: Key::Char(' '),
            ctrl: false,
            alt: false,
            shift: false,
        };
        for m in mods {
            match m.to_ascii_lowercase().as_str() {
                "ctrl" | "control" | "c" => chord.ctrl = true,
                "alt" | "option" | "meta" | "a" | "m" => chord.alt = true,
                "shift" | "s" => chord.shift = true,
                "" => return Err(format!("`{s}` has an empty modifier")),
                other => return Err(format!("unknown modifier `{other}` (use ctrl, alt, shift)")),
            }
        }
        let lower = key.to_ascii_lowercase();
        chord.key = if key.chars().count() == 1 {
            let c = key.chars().next().unwrap_or(' ');
            Key::Char(c)
        } else if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == lower) {
            Key::Named(*n)
        } else if let Some((_, c)) = CHAR_NAMES.iter().find(|(n, _)| *n == lower) {
            Key::Char(*c)
        } else if let Some(n) = lower
            .strip_prefix('f')
            .and_then(|d| d.parse::<u8>().ok())
            .filter(|n| (1..=24).contains(n))
        {
            Key::Named(Named::F(n))
        } else {
            return Err(format!(
                "unknown key `{key}` (letters, digits, symbols, space, enter, esc, tab, backspace, arrows, home/end, pageup/pagedown, f1-f24)"
            ));
        };
        Ok(chord.normalized())
    }

    /// Folds shift into printable characters so `shift+a` and `A` are the same chord.
    fn normalized(mut self) -> KeyChord {
        if let Key::Char(c) = self.key {
            if self.shift && c.is_ascii_lowercase() {
                self.key = Key::Char(c.to_ascii_uppercase());
            }
            if c != ' ' {
                self.shift = false;
            }
            if self.ctrl && c.is_ascii_uppercase() {
                // Terminals report ctrl+shift+a as ctrl+A or ctrl+a; match both as ctrl+a.
                self.key = Key::Char(c.to_ascii_lowercase());
            }
        }
        self
    }

    /// The chord of a terminal key event, or `None` for keys keymaps cannot name.
    pub(crate) fn from_event(ev: &KeyEvent) -> Option<KeyChord> {
        let key = match ev.code {
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Enter => Key::Named(Named::Enter),
            KeyCode::Esc => Key::Named(Named::Esc),
            KeyCode::Tab => Key::Named(Named::Tab),
            KeyCode::BackTab => Key::Named(Named::BackTab),
            KeyCode::Backspace => Key::Named(Named::Backspace),
            KeyCode::Delete => Key::Named(Named::Delete),
            KeyCode::Insert => Key::Named(Named::Insert),
            KeyCode::Up => Key::Named(Named::Up),
            KeyCode::Down => Key::Named(Named::Down),
            KeyCode::Left => Key::Named(Named::Left),
            KeyCode::Right => Key::Named(Named::Right),
            KeyCode::Home => Key::Named(Named::Home),
            KeyCode::End => Key::Named(Named::End),
            KeyCode::PageUp => Key::Named(Named::PageUp),
            KeyCode::PageDown => Key::Named(Named::PageDown),
            KeyCode::F(n) => Key::Named(Named::F(n)),
            _ => return None,
        };
        Some(
            KeyChord {
                key,
                ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
                alt: ev.modifiers.contains(KeyModifiers::ALT),
                shift: ev.modifiers.contains(KeyModifiers::SHIFT),
            }
            .normalized(),
        )
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            write!(f, "ctrl+")?;
        }
        if self.alt {
            write!(f, "alt+")?;
        }
        if self.shift {
            write!(f, "shift+")?;
        }
        match self.key {
            Key::Char(' ') => write!(f, "space"),
            Key::Char(c) => write!(f, "{c}"),
            Key::Named(Named::F(n)) => write!(f, "f{n}"),
            Key::Named(n) => {
                let name = NAMES.iter().find(|(_, m)| *m == n).map_or("?", |(s, _)| *s);
                write!(f, "{name}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn parses_modifiers_names_and_symbols() {
        let c = KeyChord::parse("ctrl+alt+up").unwrap();
        assert!(c.ctrl && c.alt && !c.shift);
        assert_eq!(c.key, Key::Named(Named::Up));
        assert_eq!(KeyChord::parse("+").unwrap().key, Key::Char('+'));
        assert_eq!(
            KeyChord::parse("ctrl++").unwrap(),
            KeyChord {
                key: Key::Char('+'),
                ctrl: true,
                alt: false,
                shift: false
            }
        );
        assert_eq!(
            KeyChord::parse("f12").unwrap().key,
            Key::Named(Named::F(12))
        );
        assert_eq!(KeyChord::parse("space").unwrap().key, Key::Char(' '));
    }

    #[test]
    fn shift_folds_into_letters() {
        assert_eq!(
            KeyChord::parse("shift+a").unwrap(),
            KeyChord::parse("A").unwrap()
        );
        let from_term = KeyChord::from_event(&ev(KeyCode::Char('A'), KeyModifiers::SHIFT)).unwrap();
        assert_eq!(from_term, KeyChord::parse("A").unwrap());
        let bang = KeyChord::from_event(&ev(KeyCode::Char('!'), KeyModifiers::SHIFT)).unwrap();
        assert_eq!(bang, KeyChord::parse("!").unwrap());
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(
            KeyChord::parse("hyper+x")
                .unwrap_err()
                .contains("unknown modifier")
        );
        assert!(
            KeyChord::parse("ctrl+fnord")
                .unwrap_err()
                .contains("unknown key")
        );
        assert!(KeyChord::parse("f99").is_err());
        assert!(KeyChord::parse("").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["ctrl+c", "space", "shift+up", "f5", "?", "alt+enter"] {
            assert_eq!(KeyChord::parse(s).unwrap().to_string(), s);
        }
    }
}
