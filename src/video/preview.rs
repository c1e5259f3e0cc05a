//! Terminal preview: a tiny RGB frame (published latest-wins) and a pure half-block renderer so
//! an operator over SSH sees what the audience sees.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

/// One downscaled frame for the dashboard, packed RGB (3 bytes a pixel, no row padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, row-major.
    pub rgb: Vec<u8>,
    /// Increments with every published frame (lets the UI skip redraws).
    pub seq: u64,
}

impl PreviewFrame {
    /// The pixel at (x, y), black outside the frame.
    pub(crate) fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        if x >= self.width || y >= self.height {
            return (0, 0, 0);
        }
        let i = ((y * self.width + x) * 3) as usize;
        match self.rgb.get(i..i + 3) {
            Some(p) => (p[0], p[1], p[2]),
            None => (0, 0, 0),
        }
    }
}

/// How the preview may use colour, from what the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PreviewColors {
    /// 24-bit colour (`COLORTERM=truecolor`).
    #[default]
    TrueColor,
    /// The xterm 256-colour palette (a `*-256color` TERM).
    Ansi256,
    /// The 16 ANSI colours (the Linux console, `screen`, `xterm-16color`...).
    Ansi16,
    /// No colour (`NO_COLOR`): brightness drawn with characters.
    Mono,
}

impl PreviewColors {
    /// Picks the mode from the terminal's environment: `COLORTERM` announces 24-bit colour,
    /// a `*256color*` TERM the 256-colour palette, anything else gets the 16 ANSI colours;
    /// `monochrome` (`NO_COLOR`) wins.
    pub(crate) fn detect(
        colorterm: Option<&str>,
        term: Option<&str>,
        monochrome: bool,
    ) -> PreviewColors {
        if monochrome {
            PreviewColors::Mono
        } else if colorterm.is_some_and(|c| c.eq_ignore_ascii_case("truecolor") || c == "24bit") {
            PreviewColors::TrueColor
        } else if term.is_some_and(|t| t.contains("256color")) {
            PreviewColors::Ansi256
        } else {
            PreviewColors::Ansi16
        }
    }
}

/// Characters from dark to bright for the monochrome preview.
const LUMA_RAMP: [char; 10] = [' ', '.', ':', '-', '=', '+', '*', '#', '%', '@'];

/// The xterm 256-colour index nearest to an RGB colour (6×6×6 cube or the grey ramp).
pub(crate) fn ansi256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let level = |v: u8| -> usize {
        LEVELS
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| (i32::from(**l) - i32::from(v)).abs())
            .map_or(0, |(i, _)| i)
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let dist = |c: (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(c.0, r) + d(c.1, g) + d(c.2, b)
    };
    // Grey ramp 232..=255: 8, 18, ..., 238.
    let avg = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let gi_ramp = (avg.saturating_sub(3) / 10).min(23) as u8;
    let grey = 8 + 10 * gi_ramp;
    if dist((grey, grey, grey)) < dist(cube) {
        232 + gi_ramp
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

/// The nearest of the 16 ANSI colours (xterm's default palette values).
pub(crate) fn ansi16(r: u8, g: u8, b: u8) -> Color {
    const PALETTE: [(Color, (u8, u8, u8)); 16] = [
        (Color::Black, (0, 0, 0)),
        (Color::Red, (205, 0, 0)),
        (Color::Green, (0, 205, 0)),
        (Color::Yellow, (205, 205, 0)),
        (Color::Blue, (0, 0, 238)),
        (Color::Magenta, (205, 0, 205)),
        (Color::Cyan, (0, 205, 205)),
        (Color::Gray, (229, 229, 229)),
        (Color::DarkGray, (127, 127, 127)),
        (Color::LightRed, (255, 0, 0)),
        (Color::LightGreen, (0, 255, 0)),
        (Color::LightYellow, (255, 255, 0)),
        (Color::LightBlue, (92, 92, 255)),
        (Color::LightMagenta, (255, 0, 255)),
        (Color::LightCyan, (0, 255, 255)),
        (Color::White, (255, 255, 255)),
    ];
    let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
    PALETTE
        .iter()
        .min_by_key(|(_, c)| d(c.0, r) + d(c.1, g) + d(c.2, b))
        .map_or(Color::Reset, |(c, _)| *c)
}

/// The largest rectangle inside `area` that shows a `width`×`height` frame undistorted (one
/// cell is one pixel wide and two tall with half blocks, about square on common fonts),
/// centred.
pub(crate) fn fit(area: Rect, width: u32, height: u32) -> Rect {
    if width == 0 || height == 0 || area.is_empty() {
        return Rect::new(area.x, area.y, 0, 0);
    }
    let (cols, px_rows) = (u32::from(area.width), u32::from(area.height) * 2);
    // Scale = min(cols / width, px_rows / height), kept as a fraction to stay exact.
    let (w, h) = if cols * height <= px_rows * width {
        (cols, (cols * height / width).max(1))
    } else {
        ((px_rows * width / height).max(1), px_rows)
    };
    let (w, rows) = (
        w.min(cols) as u16,
        (h.div_ceil(2)).min(u32::from(area.height)) as u16,
    );
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - rows) / 2,
        w,
        rows,
    )
}

/// Draws a [`PreviewFrame`] with `▀` cells (upper pixel = foreground, lower = background),
/// scaled nearest-neighbour to fill the area (use [`fit`] first to keep the aspect ratio).
#[derive(Debug, Clone, Copy)]
pub struct PreviewWidget<'a> {
    frame: &'a PreviewFrame,
    colors: PreviewColors,
}

impl<'a> PreviewWidget<'a> {
    /// A widget for `frame` in 24-bit colour.
    pub(crate) fn new(frame: &'a PreviewFrame) -> Self {
        PreviewWidget {
            frame,
            colors: PreviewColors::TrueColor,
        }
    }

    /// The same in the given colour mode.
    pub(crate) fn colors(mut self, colors: PreviewColors) -> Self {
        self.colors = colors;
        self
    }
}

fn half_block_pixels(
    frame: &PreviewFrame,
    cols: u16,
    rows: u16,
    col: u16,
    row: u16,
) -> ((u8, u8, u8), (u8, u8, u8)) {
    let sample = |sub_row: u32| {
        let px_rows = u32::from(rows) * 2;
        let x = u32::from(col) * frame.width / u32::from(cols.max(1));
        let y = sub_row * frame.height / px_rows.max(1);
        frame.pixel(x, y)
    };
    (sample(u32::from(row) * 2), sample(u32::from(row) * 2 + 1))
}

impl Widget for PreviewWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if self.frame.width == 0 || self.frame.height == 0 {
            return;
        }
        for row in 0..area.height {
            for col in 0..area.width {
                let (top, bottom) =
                    half_block_pixels(self.frame, area.width, area.height, col, row);
                let Some(cell) = buf.cell_mut((area.x + col, area.y + row)) else {
                    continue;
                };
                match self.colors {
                    PreviewColors::TrueColor => {
                        cell.set_symbol("▀")
                            .set_fg(Color::Rgb(top.0, top.1, top.2))
                            .set_bg(Color::Rgb(bottom.0, bottom.1, bottom.2));
                    }
                    PreviewColors::Ansi256 => {
                        cell.set_symbol("▀")
                            .set_fg(Color::Indexed(ansi256(top.0, top.1, top.2)))
                            .set_bg(Color::Indexed(ansi256(bottom.0, bottom.1, bottom.2)));
                    }
                    PreviewColors::Ansi16 => {
                        cell.set_symbol("▀")
                            .set_fg(ansi16(top.0, top.1, top.2))
                            .set_bg(ansi16(bottom.0, bottom.1, bottom.2));
                    }
                    PreviewColors::Mono => {
                        // Rec. 601 luma of the two pixels, averaged.
                        let luma = |p: (u8, u8, u8)| {
                            299 * u32::from(p.0) + 587 * u32::from(p.1) + 114 * u32::from(p.2)
                        };
                        let l = (luma(top) + luma(bottom)) / 2 / 1000; // 0..=255
                        let i = (l as usize * (LUMA_RAMP.len() - 1) + 127) / 255;
                        let mut tmp = [0u8; 4];
                        cell.set_symbol(
                            LUMA_RAMP[i.min(LUMA_RAMP.len() - 1)].encode_utf8(&mut tmp),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4×4 frame: top half red, bottom half blue, except pixel (3,3) white.
    fn frame() -> PreviewFrame {
        let mut rgb = Vec::new();
        for y in 0..4 {
            for x in 0..4 {
                let p = if (x, y) == (3, 3) {
                    [255, 255, 255]
                } else if y < 2 {
                    [255, 0, 0]
                } else {
                    [0, 0, 255]
                };
                rgb.extend_from_slice(&p);
            }
        }
        PreviewFrame {
            width: 4,
            height: 4,
            rgb,
            seq: 1,
        }
    }

    #[test]
    fn half_blocks_carry_two_pixels_per_cell() {
        let f = frame();
        let area = Rect::new(0, 0, 4, 2);
        let mut buf = Buffer::empty(area);
        PreviewWidget::new(&f).render(area, &mut buf);
        let c = &buf[(0, 0)];
        assert_eq!(c.symbol(), "▀");
        assert_eq!((c.fg, c.bg), (Color::Rgb(255, 0, 0), Color::Rgb(255, 0, 0)));
        let c = &buf[(1, 1)];
        assert_eq!((c.fg, c.bg), (Color::Rgb(0, 0, 255), Color::Rgb(0, 0, 255)));
        let c = &buf[(3, 1)];
        assert_eq!(
            (c.fg, c.bg),
            (Color::Rgb(0, 0, 255), Color::Rgb(255, 255, 255))
        );
    }

    #[test]
    fn scales_down_to_a_smaller_area() {
        let f = frame();
        let area = Rect::new(2, 1, 2, 1);
        let mut buf = Buffer::empty(Rect::new(0, 0, 5, 3));
        PreviewWidget::new(&f).render(area, &mut buf);
        // One row of cells covers 2 sampled pixel rows: y=0 (red) and y=2 (blue).
        let c = &buf[(2, 1)];
        assert_eq!((c.fg, c.bg), (Color::Rgb(255, 0, 0), Color::Rgb(0, 0, 255)));
        // Outside the area nothing was drawn.
        assert_eq!(buf[(0, 0)].symbol(), " ");
    }

    #[test]
    fn fit_keeps_the_aspect_ratio_and_centres() {
        // A square frame in a wide area: square in pixels = twice as many columns as rows.
        assert_eq!(
            fit(Rect::new(0, 0, 40, 10), 64, 64),
            Rect::new(10, 0, 20, 10)
        );
        // A 16:9 frame in a tall area: full width.
        assert_eq!(
            fit(Rect::new(2, 1, 32, 20), 1280, 720),
            Rect::new(2, 6, 32, 9)
        );
        assert_eq!(fit(Rect::new(0, 0, 10, 10), 0, 64).width, 0);
    }

    #[test]
    fn ansi256_maps_primaries_and_greys() {
        assert_eq!(ansi256(255, 0, 0), 196);
        assert_eq!(ansi256(0, 0, 255), 21);
        assert_eq!(ansi256(0, 0, 0), 16);
        assert_eq!(ansi256(128, 128, 128), 244);
        assert_eq!(ansi256(255, 255, 255), 231);
    }

    #[test]
    fn colour_modes_follow_the_terminal() {
        assert_eq!(
            PreviewColors::detect(Some("truecolor"), Some("xterm"), false),
            PreviewColors::TrueColor
        );
        assert_eq!(
            PreviewColors::detect(None, Some("tmux-256color"), false),
            PreviewColors::Ansi256
        );
        assert_eq!(
            PreviewColors::detect(None, Some("linux"), false),
            PreviewColors::Ansi16
        );
        assert_eq!(
            PreviewColors::detect(None, None, false),
            PreviewColors::Ansi16
        );
        assert_eq!(
            PreviewColors::detect(Some("truecolor"), None, true),
            PreviewColors::Mono
        );
        assert_eq!(ansi16(250, 10, 10), Color::LightRed);
        assert_eq!(ansi16(20, 20, 20), Color::Black);
        assert_eq!(ansi16(120, 125, 130), Color::DarkGray);
        let f = frame();
        let area = Rect::new(0, 0, 4, 2);
        let mut buf = Buffer::empty(area);
        PreviewWidget::new(&f)
            .colors(PreviewColors::Mono)
            .render(area, &mut buf);
        // Red (luma 76) is dim, blue (29) darker; the white corner brightens its cell.
        assert_eq!(buf[(0, 0)].symbol(), "-");
        assert_eq!(buf[(0, 1)].symbol(), ".");
        assert_eq!(buf[(3, 1)].symbol(), "+");
        assert_eq!(buf[(0, 0)].fg, Color::Reset);
        let mut buf = Buffer::empty(area);
        PreviewWidget::new(&f)
            .colors(PreviewColors::Ansi256)
            .render(area, &mut buf);
        assert_eq!(
            (buf[(0, 0)].fg, buf[(0, 1)].bg),
            (Color::Indexed(196), Color::Indexed(21))
        );
    }
}
