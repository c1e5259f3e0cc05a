//! Dashboard colours from a style file (`styles/*.toml`), separate from the generation themes.
//! Defaults use the 16 ANSI colours so any terminal works; `NO_COLOR` removes colour entirely.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::config::diagnostics::{ConfigError, SourceDoc};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    name: String,
    accent: String,
    text: String,
    dim: String,
    good: String,
    warn: String,
    bad: String,
    meter_low: String,
    meter_mid: String,
    meter_high: String,
    peak: String,
    beat: String,
    panic_fg: String,
    panic_bg: String,
}

/// Resolved dashboard colours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiStyle {
    /// File stem.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Titles, highlights.
    pub(crate) accent: Color,
    /// Normal text.
    pub(crate) text: Color,
    /// Secondary text.
    pub(crate) dim: Color,
    /// Healthy states.
    pub(crate) good: Color,
    /// Warnings.
    pub(crate) warn: Color,
    /// Errors.
    pub(crate) bad: Color,
    /// Meter colour, low third.
    pub(crate) meter_low: Color,
    /// Meter colour, middle third.
    pub(crate) meter_mid: Color,
    /// Meter colour, top third.
    pub(crate) meter_high: Color,
    /// Peak-hold marks.
    pub(crate) peak: Color,
    /// Beat flash.
    pub(crate) beat: Color,
    /// Panic banner text.
    pub(crate) panic_fg: Color,
    /// Panic banner background.
    pub(crate) panic_bg: Color,
    /// No colours at all (`NO_COLOR`): widgets rely on bold/reverse.
    pub(crate) monochrome: bool,
}

/// Parses a colour name or `#rrggbb`.
pub(crate) fn parse_color(s: &str) -> Result<Color, String> {
    let named = match s.to_ascii_lowercase().as_str() {
        "reset" | "default" => Some(Color::Reset),
        "black" => Some(Color::Black),
        "red" => Some(Color::Red),
        "green" => Some(Color::Green),
        "yellow" => Some(Color::Yellow),
        "blue" => Some(Color::Blue),
        "magenta" => Some(Color::Magenta),
        "cyan" => Some(Color::Cyan),
        "gray" | "grey" => Some(Color::Gray),
        "darkgray" | "darkgrey" => Some(Color::DarkGray),
        "lightred" => Some(Color::LightRed),
        "lightgreen" => Some(Color::LightGreen),
        "lightyellow" => Some(Color::LightYellow),
        "lightblue" => Some(Color::LightBlue),
        "lightmagenta" => Some(Color::LightMagenta),
        "lightcyan" => Some(Color::LightCyan),
        "white" => Some(Color::White),
        _ => None,
    };
    if let Some(c) = named {
        return Ok(c);
    }
    if let Some(hex) = s.strip_prefix('#').filter(|h| h.len() == 6) {
        if let Ok(v) = u32::from_str_radix(hex, 16) {
            return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
    }
    Err("not a colour: use one of the 16 ANSI names, \"reset\", or \"#rrggbb\"".into())
}

impl UiStyle {
    /// Parses and validates a style file; `None` with errors pushed when invalid.
    pub fn from_text(
        name: &str,
        stem: &str,
        text: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<UiStyle> {
        let (doc, raw) = SourceDoc::load::<RawStyle>(name, text, errors)?;
        let before = errors.len();
        let mut col = |key: &str, v: &str| match parse_color(v) {
            Ok(c) => c,
            Err(e) => {
                errors.push(doc.error_at(key, e, None));
                Color::Reset
            }
        };
        let style = UiStyle {
            id: stem.to_string(),
            name: raw.name.clone(),
            accent: col("accent", &raw.accent),
            text: col("text", &raw.text),
            dim: col("dim", &raw.dim),
            good: col("good", &raw.good),
            warn: col("warn", &raw.warn),
            bad: col("bad", &raw.bad),
            meter_low: col("meter_low", &raw.meter_low),
            meter_mid: col("meter_mid", &raw.meter_mid),
            meter_high: col("meter_high", &raw.meter_high),
            peak: col("peak", &raw.peak),
            beat: col("beat", &raw.beat),
            panic_fg: col("panic_fg", &raw.panic_fg),
            panic_bg: col("panic_bg", &raw.panic_bg),
            monochrome: false,
        };
        (errors.len() == before).then_some(style)
    }

    /// The same style with every colour removed (for `NO_COLOR`).
    /// This style as the terminal should get it: without colours when `NO_COLOR` is set to
    /// anything non-empty (no-color.org).
    pub(crate) fn for_terminal(self) -> UiStyle {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            self.monochrome()
        } else {
            self
        }
    }

    pub(crate) fn monochrome(mut self) -> UiStyle {
        for c in [
            &mut self.accent,
            &mut self.text,
            &mut self.dim,
            &mut self.good,
            &mut self.warn,
            &mut self.bad,
            &mut self.meter_low,
            &mut self.meter_mid,
            &mut self.meter_high,
            &mut self.peak,
            &mut self.beat,
            &mut self.panic_fg,
            &mut self.panic_bg,
        ] {
            *c = Color::Reset;
        }
        self.monochrome = true;
        self
    }

    /// Secondary text (dim modifier in monochrome).
    pub(crate) fn dimmed(&self) -> Style {
        if self.monochrome {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            Style::new().fg(self.dim)
        }
    }

    /// The unmissable panic look.
    pub(crate) fn panic(&self) -> Style {
        let s = Style::new().add_modifier(Modifier::BOLD);
        if self.monochrome {
            s.add_modifier(Modifier::REVERSED)
        } else {
            s.fg(self.panic_fg).bg(self.panic_bg)
        }
    }
}

impl Default for UiStyle {
    fn default() -> Self {
        let mut errs = Vec::new();
        UiStyle::from_text(
            "<built-in>/styles/default.toml",
            "default",
            crate::config::EMBEDDED_STYLES[0].1,
            &mut errs,
        )
        .unwrap_or_else(|| UiStyle {
            id: "default".into(),
            name: "Default".into(),
            accent: Color::Cyan,
            text: Color::Reset,
            dim: Color::DarkGray,
            good: Color::Green,
            warn: Color::Yellow,
            bad: Color::Red,
            meter_low: Color::Green,
            meter_mid: Color::Yellow,
            meter_high: Color::Red,
            peak: Color::White,
            beat: Color::LightMagenta,
            panic_fg: Color::White,
            panic_bg: Color::Red,
            monochrome: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_style_parses() {
        let s = UiStyle::default();
        assert_eq!(s.accent, Color::Cyan);
        assert!(!s.monochrome);
    }

    #[test]
    fn colours_parse_and_errors_are_located() {
        assert_eq!(parse_color("#ff8000").unwrap(), Color::Rgb(255, 128, 0));
        assert!(parse_color("chartreuse").is_err());
        let text = crate::config::EMBEDDED_STYLES[0]
            .1
            .replace("accent = \"cyan\"", "accent = \"chartreuse\"");
        let mut errs = Vec::new();
        assert!(UiStyle::from_text("s.toml", "s", &text, &mut errs).is_none());
        assert_eq!(errs[0].key, "accent");
        assert!(errs[0].line > 1);
    }

    #[test]
    fn monochrome_has_no_colours() {
        let m = UiStyle::default().monochrome();
        assert_eq!(m.bad, Color::Reset);
        assert!(m.panic().add_modifier.contains(Modifier::REVERSED));
    }
}
