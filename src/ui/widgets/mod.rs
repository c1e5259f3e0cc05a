//! Dashboard widgets. Each is a plain struct borrowed from the snapshot and drawn with
//! `impl Widget`, so it can be tested with exact buffer assertions.

pub(crate) mod beat;
pub(crate) mod cues;
pub(crate) mod gauge;
pub(crate) mod meter;
pub(crate) mod midi;
pub(crate) mod outputs;
pub(crate) mod params;
pub(crate) mod prompt;
pub(crate) mod video;

/// Eighth-block characters from empty to full, for sub-cell resolution.
pub(crate) const VERTICAL_EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Horizontal eighth blocks from empty to full.
pub(crate) const HORIZONTAL_EIGHTHS: [char; 9] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// Fills `width` cells proportionally to `fraction` (0..1) with eighth blocks.
pub(crate) fn horizontal_bar(fraction: f32, width: u16) -> String {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * f32::from(width) * 8.0).round() as usize;
    let full = eighths / 8;
    let part = eighths % 8;
    let mut s = String::with_capacity(width as usize * 3);
    for _ in 0..full {
        s.push('█');
    }
    if full < width as usize {
        s.push(HORIZONTAL_EIGHTHS[part]);
        for _ in full + 1..width as usize {
            s.push(' ');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizontal_bar_resolves_eighths() {
        assert_eq!(horizontal_bar(0.0, 4), "    ");
        assert_eq!(horizontal_bar(1.0, 4), "████");
        assert_eq!(horizontal_bar(0.5, 4), "██  ");
        assert_eq!(horizontal_bar(0.5 + 1.0 / 32.0, 4), "██▏ ");
        assert_eq!(horizontal_bar(f32::NAN, 3), "   ");
    }
}
