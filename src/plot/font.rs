//! A 3 × 5 bitmap font for the digits 0–9, enough to number a legend.

use super::Image;

/// Each digit's five rows, top to bottom; bit 2 is the left column.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b001, 0b001, 0b001],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// Width of a glyph in font pixels, and the advance to the next glyph (one blank column).
pub(crate) const GLYPH_WIDTH: usize = 3;
pub(crate) const GLYPH_ADVANCE: usize = 4;

/// Draws the decimal digits of `number` with its top-left corner at (`x`, `y`), each font
/// pixel a `scale × scale` square; returns the width drawn.
pub(crate) fn draw_number(
    image: &mut Image,
    x: usize,
    y: usize,
    number: usize,
    scale: usize,
    color: &[u8],
) -> usize {
    let text = number.to_string();
    for (position, digit) in text.bytes().enumerate() {
        let glyph = DIGITS[usize::from(digit - b'0')];
        let left = x + position * GLYPH_ADVANCE * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH_WIDTH {
                if bits & (0b100 >> col) != 0 {
                    image.fill_rect(left + col * scale, y + row * scale, scale, scale, color);
                }
            }
        }
    }
    (text.len() * GLYPH_ADVANCE - 1) * scale
}

#[cfg(test)]
mod tests {
    use super::super::ColorType;
    use super::*;

    #[test]
    fn draws_the_digit_one() {
        let mut image = Image::filled(4, 5, ColorType::Gray, &[0]);
        assert_eq!(draw_number(&mut image, 0, 0, 1, 1, &[255]), 3);
        let rows: Vec<Vec<u8>> = (0..5)
            .map(|y| (0..3).map(|x| image.pixel(x, y)[0] / 255).collect())
            .collect();
        assert_eq!(
            rows,
            [[0, 1, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0], [1, 1, 1]]
        );
    }
}
