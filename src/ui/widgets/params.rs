//! Live parameters: each value as a bar within its range, who set it, and a flash when a
//! one-shot fires.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;

use super::horizontal_bar;
use crate::core::action::ActionSource;
use crate::core::snapshot::ParamRow;
use crate::ui::style::UiStyle;

/// Short tag for where a value came from.
pub(crate) fn source_tag(s: ActionSource) -> &'static str {
    match s {
        ActionSource::Keyboard => "key",
        ActionSource::Midi => "midi",
        ActionSource::Script => "stdin",
        ActionSource::Mapping => "map",
        ActionSource::System => "sys",
    }
}

/// One row per parameter: `noise_scale ████▌   0.56 map`.
pub(crate) struct ParamList<'a> {
    /// Rows to show (in order).
    pub(crate) rows: &'a [ParamRow],
    /// Key of a one-shot flashing now (`reset_cache`, `prompt`, `panic`).
    pub(crate) flash: Option<&'a str>,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.2}"),
            _ => n.to_string(),
        },
        serde_json::Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_number()) => a
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
        serde_json::Value::Array(a) => {
            // prompts: show the first prompt's text.
            a.first()
                .and_then(|p| p.get("text"))
                .and_then(|t| t.as_str())
                .map_or_else(|| format!("[{} items]", a.len()), str::to_string)
        }
        other => other.to_string(),
    }
}

impl Widget for ParamList<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let mut y = area.y;
        if let Some(f) = self.flash {
            let st = Style::new()
                .fg(self.style.accent)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED);
            buf.set_stringn(area.x, y, format!("» {f}"), area.width as usize, st);
            y += 1;
        }
        let key_w = (area.width / 3).clamp(6, 22) as usize;
        for row in self.rows {
            if y >= area.y + area.height {
                break;
            }
            let key: String = row.key.chars().take(key_w).collect();
            buf.set_string(area.x, y, format!("{key:<key_w$} "), Style::new());
            let tag = source_tag(row.source);
            let text = value_text(&row.value);
            let x0 = area.x + key_w as u16 + 1;
            let rest = area.width.saturating_sub(key_w as u16 + 1);
            // Tail: " <value:7> <tag:5>" (14 cells); the bar takes what is left.
            let bar_w = rest.saturating_sub(14);
            let numeric = row
                .value
                .as_f64()
                .or_else(|| row.value.as_bool().map(f64::from));
            match (row.range, numeric) {
                (Some((lo, hi)), Some(v)) if hi > lo && bar_w >= 4 => {
                    let frac = ((v - lo) / (hi - lo)) as f32;
                    buf.set_string(
                        x0,
                        y,
                        horizontal_bar(frac, bar_w),
                        Style::new().fg(self.style.accent),
                    );
                    let t: String = text.chars().take(7).collect();
                    buf.set_stringn(x0 + bar_w, y, format!(" {t:>7} "), 9, Style::new());
                }
                _ => {
                    let tw = rest.saturating_sub(6) as usize;
                    let t: String = text.chars().take(tw).collect();
                    buf.set_stringn(x0, y, t, tw, Style::new());
                }
            }
            if rest >= 6 {
                // Held against the mapping: the seconds left, not "map" (which would hide it).
                let (tag, st) = match row.held {
                    Some(left) => (
                        format!("⏸{}s", left.as_secs_f64().ceil() as u64),
                        Style::new().fg(self.style.warn),
                    ),
                    None => (tag.to_string(), self.style.dimmed()),
                };
                buf.set_string(area.x + area.width - 5, y, format!("{tag:>5}"), st);
            }
            y += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(buf: &Buffer, y: u16) -> String {
        (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect()
    }

    #[test]
    fn numeric_rows_show_a_bar_value_and_source() {
        let style = UiStyle::default().monochrome();
        let rows = vec![
            ParamRow {
                key: "noise_scale".into(),
                value: json!(0.5),
                range: Some((0.0, 1.0)),
                source: ActionSource::Mapping,
                held: None,
            },
            ParamRow {
                key: "paused".into(),
                value: json!(false),
                range: Some((0.0, 1.0)),
                source: ActionSource::Keyboard,
                held: Some(std::time::Duration::from_millis(2300)),
            },
            ParamRow {
                key: "prompts".into(),
                value: json!([{"text":"neon","weight":1.0}]),
                range: None,
                source: ActionSource::Script,
                held: None,
            },
        ];
        let mut buf = Buffer::empty(Rect::new(0, 0, 36, 4));
        ParamList {
            rows: &rows,
            flash: Some("reset_cache"),
            style: &style,
        }
        .render(buf.area, &mut buf);
        assert_eq!(line(&buf, 0), "» reset_cache                       ");
        // key column = 36/3 = 12 (+1 space); bar = 36 - 13 - 14 = 9 cells.
        assert_eq!(line(&buf, 1), "noise_scale  ████▌        0.50   map");
        // Held against the mapping: seconds left (rounded up) instead of the source.
        assert_eq!(line(&buf, 2), "paused                     off   ⏸3s");
        assert_eq!(line(&buf, 3), "prompts      neon              stdin");
    }
}
