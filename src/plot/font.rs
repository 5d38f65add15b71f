//! A 3 × 5 bitmap font: the digits 0–9, enough to number a legend, and capital letters and a
//! little punctuation for series names and tick labels (lower case is drawn as upper case).

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

/// The glyph of a character other than a digit, or `None` for one the font lacks (drawn as a
/// blank). Letters of either case share the capital's glyph.
fn glyph(c: char) -> Option<[u8; 5]> {
    if let Some(d) = c.to_digit(10) {
        return Some(DIGITS[d as usize]);
    }
    Some(match c.to_ascii_uppercase() {
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        ',' => [0b000, 0b000, 0b000, 0b010, 0b100],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        '_' => [0b000, 0b000, 0b000, 0b000, 0b111],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '%' => [0b101, 0b001, 0b010, 0b100, 0b101],
        '(' => [0b010, 0b100, 0b100, 0b100, 0b010],
        ')' => [0b010, 0b001, 0b001, 0b001, 0b010],
        '=' => [0b000, 0b111, 0b000, 0b111, 0b000],
        _ => return None,
    })
}

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

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a `scale × scale`
/// square (a character the font lacks is a blank); returns the width drawn, [`text_width`].
pub(crate) fn draw_text(
    image: &mut Image,
    x: usize,
    y: usize,
    text: &str,
    scale: usize,
    color: &[u8],
) -> usize {
    for (position, c) in text.chars().enumerate() {
        let Some(glyph) = glyph(c) else { continue };
        let left = x + position * GLYPH_ADVANCE * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH_WIDTH {
                if bits & (0b100 >> col) != 0 {
                    image.fill_rect(left + col * scale, y + row * scale, scale, scale, color);
                }
            }
        }
    }
    text_width(text, scale)
}

/// The width in pixels of `text` drawn at `scale`: four font pixels per character but the
/// last, which has no blank column after it.
pub(crate) fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * GLYPH_ADVANCE).saturating_sub(1) * scale
}

/// Height of a glyph in font pixels.
pub(crate) const GLYPH_HEIGHT: usize = 5;

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

    #[test]
    fn text_draws_letters_of_either_case_and_skips_unknown_characters() {
        let mut upper = Image::filled(12, 5, ColorType::Gray, &[0]);
        let mut lower = upper.clone();
        assert_eq!(draw_text(&mut upper, 0, 0, "T~1", 1, &[255]), 11);
        draw_text(&mut lower, 0, 0, "t~1", 1, &[255]);
        assert_eq!(upper, lower);
        // 'T': the top row full, then the middle column; '~' blank; '1' as draw_number.
        assert_eq!(upper.pixel(0, 0), [255]);
        assert_eq!(upper.pixel(0, 1), [0]);
        assert_eq!(upper.pixel(1, 4), [255]);
        assert!((4..7).all(|x| (0..5).all(|y| upper.pixel(x, y) == [0])));
        assert_eq!(upper.pixel(9, 0), [255]);
    }
}
