//! Dashboard widgets. Each is a plain struct borrowed from the snapshot and drawn with
//! `impl Widget`, so it can be tested with exact buffer assertions.

pub mod beat;
pub mod cues;
pub mod gauge;
pub mod meter;
pub mod midi;
pub mod outputs;
pub mod params;
pub mod prompt;
pub mod video;

/// Eighth-block characters from empty to full, for sub-cell resolution.
pub const VERTICAL_EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Horizontal eighth blocks from empty to full.
pub const HORIZONTAL_EIGHTHS: [char; 9] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// Fills `width` cells proportionally to `fraction` (0..1) with eighth blocks.
pub fn horizontal_bar(fraction: f32, width: u16) -> String {
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
