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
    pub fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
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

/// Draws a [`PreviewFrame`] with `▀` cells (upper pixel = foreground, lower = background),
/// scaled nearest-neighbour to fill the area.
#[derive(Debug, Clone, Copy)]
pub struct PreviewWidget<'a> {
    frame: &'a PreviewFrame,
}

impl<'a> PreviewWidget<'a> {
    /// A widget for `frame`.
    pub fn new(frame: &'a PreviewFrame) -> Self {
        PreviewWidget { frame }
    }
}

/// The colours of cell (col, row) in a `cols`×`rows` grid: (upper half, lower half).
pub fn half_block_cell(
    frame: &PreviewFrame,
    cols: u16,
    rows: u16,
    col: u16,
    row: u16,
) -> (Color, Color) {
    let sample = |sub_row: u32| {
        let px_rows = u32::from(rows) * 2;
        let x = u32::from(col) * frame.width / u32::from(cols.max(1));
        let y = sub_row * frame.height / px_rows.max(1);
        let (r, g, b) = frame.pixel(x, y);
        Color::Rgb(r, g, b)
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
                let (top, bottom) = half_block_cell(self.frame, area.width, area.height, col, row);
                if let Some(cell) = buf.cell_mut((area.x + col, area.y + row)) {
                    cell.set_symbol("▀").set_fg(top).set_bg(bottom);
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
}
