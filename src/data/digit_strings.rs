//! Digit strings for sequence-to-sequence learning: the reversal task.
//!
//! An example is a string of decimal digits, `min_len..=max_len` of them; its target is the same
//! string reversed (`3 1 4 1 5` → `5 1 4 1 3`). An encoder reads the source, a decoder writes
//! the target one token at a time and says when it is done with [`END`].
//!
//! # Tokens
//!
//! | id | token | used in |
//! |---|---|---|
//! | `0..=9` | the digits | source, decoder input, target |
//! | [`START`] = 10 | start of the output | decoder input (step 0) |
//! | [`END`] = 11 | end of the output | decoder input, target |
//! | [`PAD`] = 12 | padding to the fixed length | everywhere, after (or, in the source, before) the string |
//!
//! The one-hot width [`VOCAB`] is 12: [`PAD`] is not a class but the zero vector, so padding
//! adds nothing to an input and weighs nothing in a loss whose targets are one-hot rows.
//!
//! # Shapes (a batch of `B` strings, `L = max_len`)
//!
//! | sequence | length | layout |
//! |---|---|---|
//! | source | `L` | [`PAD`]s, then the digits: padded on the left, so the encoder reads the digits last, right before it hands its state to the decoder |
//! | target | `L + 1` | the reversed digits, [`END`], then [`PAD`]s |
//! | decoder input | `L + 1` | [`START`], then the target shifted right by one (teacher forcing) |
//!
//! [`ReversalBatch`] holds the three as `[B, L]` and `[B, L + 1]` token tables and gives the
//! source as a one-hot tensor `[B, L, VOCAB]` for an encoder, and step `t`'s column of the
//! others for a decoder that runs step by step.
//!
//! ```
//! use typednet::data::digit_strings::{decode_output, exact_match, ReversalTask, END, PAD, START};
//!
//! let task = ReversalTask::new(3..=5);
//! let batch = task.batch(&[vec![3, 1, 4]]);
//! assert_eq!(batch.source, [PAD, PAD, 3, 1, 4]);
//! assert_eq!(batch.target, [4, 1, 3, END, PAD, PAD]);
//! assert_eq!(batch.decoder_input, [START, 4, 1, 3, END, PAD]);
//! assert_eq!(decode_output(&batch.target), Some(vec![4, 1, 3]));
//! assert!(exact_match(&[4, 1, 3, END, 7, 7], &[4, 1, 3]));
//! ```

use std::ops::RangeInclusive;

use dfdx::shapes::{Const, Dtype};
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The number of digit tokens, `0..=9`.
pub const DIGITS: usize = 10;
/// The token that starts the decoder's input.
pub const START: usize = 10;
/// The token that ends an output string.
pub const END: usize = 11;
/// The padding token: the zero vector in one-hot form, outside the [`VOCAB`] classes.
pub const PAD: usize = 12;
/// The one-hot width: the digits, [`START`] and [`END`] ([`PAD`] is the zero vector).
pub const VOCAB: usize = 12;

/// The reversal task for digit strings whose lengths lie in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversalTask {
    min_len: usize,
    max_len: usize,
}

impl ReversalTask {
    /// Strings of `lengths.start()..=lengths.end()` digits, each length equally likely.
    ///
    /// # Panics
    /// When the range is empty or admits the empty string.
    pub fn new(lengths: RangeInclusive<usize>) -> Self {
        let (min_len, max_len) = lengths.into_inner();
        assert!(
            1 <= min_len && min_len <= max_len,
            "ReversalTask: string lengths {min_len}..={max_len} must be a non-empty range from 1 up"
        );
        ReversalTask { min_len, max_len }
    }

    /// The shortest string length.
    pub fn min_len(&self) -> usize {
        self.min_len
    }

    /// The longest string length, `L`: the number of source steps.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The number of decoder steps, `L + 1`: the longest target and its [`END`].
    pub fn decoder_steps(&self) -> usize {
        self.max_len + 1
    }

    /// One random digit string: a length drawn uniformly from the range, then uniform digits.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<usize> {
        let len = rng.gen_range(self.min_len..=self.max_len);
        (0..len).map(|_| rng.gen_range(0..DIGITS)).collect()
    }

    /// `count` random strings, the same ones for the same `seed`.
    pub fn strings(&self, count: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count).map(|_| self.sample(&mut rng)).collect()
    }

    /// The source, decoder input and target tokens of `strings`, padded to this task's lengths.
    ///
    /// # Panics
    /// When a string's length is outside the task's range or it holds a token that is not a
    /// digit.
    pub fn batch(&self, strings: &[Vec<usize>]) -> ReversalBatch {
        let mut source = Vec::with_capacity(strings.len() * self.max_len);
        let mut decoder_input = Vec::with_capacity(strings.len() * self.decoder_steps());
        let mut target = Vec::with_capacity(strings.len() * self.decoder_steps());
        for digits in strings {
            assert!(
                (self.min_len..=self.max_len).contains(&digits.len()),
                "ReversalTask::batch: a string of {} digits, outside {}..={}",
                digits.len(),
                self.min_len,
                self.max_len
            );
            source.extend(encode_source(digits, self.max_len));
            let reversed = encode_target(&reverse(digits), self.max_len);
            decoder_input.push(START);
            decoder_input.extend_from_slice(&reversed[..self.max_len]);
            target.extend(reversed);
        }
        ReversalBatch {
            size: strings.len(),
            max_len: self.max_len,
            source,
            decoder_input,
            target,
        }
    }
}

/// A batch of the reversal task as token tables (row-major, one row per string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversalBatch {
    /// The number of strings, `B`.
    pub size: usize,
    /// The longest string length of the task, `L`.
    pub max_len: usize,
    /// `[B, L]`: each string padded on the left ([`encode_source`]).
    pub source: Vec<usize>,
    /// `[B, L + 1]`: [`START`], then the target without its last position.
    pub decoder_input: Vec<usize>,
    /// `[B, L + 1]`: each reversed string, [`END`], then padding ([`encode_target`]).
    pub target: Vec<usize>,
}

impl ReversalBatch {
    /// The source as one-hot rows, `[B, L, VOCAB]`, padding as zeros.
    pub fn source_one_hot<E: Dtype, D: Device<E>>(
        &self,
        device: &D,
    ) -> Tensor<(usize, usize, Const<VOCAB>), E, D> {
        device.tensor_from_vec(one_hot(&self.source), (self.size, self.max_len, Const))
    }

    /// Step `step`'s decoder input for every string, `[B]` tokens.
    ///
    /// # Panics
    /// When `step > L`.
    pub fn decoder_input_at(&self, step: usize) -> Vec<usize> {
        column(&self.decoder_input, self.max_len + 1, step)
    }

    /// Step `step`'s target for every string, `[B]` tokens.
    ///
    /// # Panics
    /// When `step > L`.
    pub fn target_at(&self, step: usize) -> Vec<usize> {
        column(&self.target, self.max_len + 1, step)
    }

    /// The targets step-major, `[L + 1, B]`: the layout of a decoder's outputs stacked step by
    /// step.
    pub fn targets_by_step(&self) -> Vec<usize> {
        (0..=self.max_len).flat_map(|t| self.target_at(t)).collect()
    }

    /// The number of target tokens that are not padding: what a per-token loss averages over.
    pub fn target_tokens(&self) -> usize {
        self.target.iter().filter(|&&t| t != PAD).count()
    }
}

/// Position `step` of each row of a row-major table with rows of `width`.
fn column(table: &[usize], width: usize, step: usize) -> Vec<usize> {
    assert!(step < width, "step {step} of a sequence of {width}");
    table.iter().skip(step).step_by(width).copied().collect()
}

/// `digits` in reverse order: the target of the task.
pub fn reverse(digits: &[usize]) -> Vec<usize> {
    digits.iter().rev().copied().collect()
}

/// A source string as `max_len` tokens: [`PAD`]s, then the digits.
///
/// # Panics
/// When `digits` is longer than `max_len` or holds a token that is not a digit.
pub fn encode_source(digits: &[usize], max_len: usize) -> Vec<usize> {
    check_digits("encode_source", digits, max_len);
    let mut tokens = vec![PAD; max_len - digits.len()];
    tokens.extend_from_slice(digits);
    tokens
}

/// The digits of a source encoded by [`encode_source`] (its tokens other than [`PAD`]).
pub fn decode_source(tokens: &[usize]) -> Vec<usize> {
    tokens.iter().copied().filter(|&t| t != PAD).collect()
}

/// An output string as `max_len + 1` tokens: the digits, [`END`], then [`PAD`]s.
///
/// # Panics
/// When `digits` is longer than `max_len` or holds a token that is not a digit.
pub fn encode_target(digits: &[usize], max_len: usize) -> Vec<usize> {
    check_digits("encode_target", digits, max_len);
    let mut tokens = digits.to_vec();
    tokens.push(END);
    tokens.resize(max_len + 1, PAD);
    tokens
}

fn check_digits(function: &str, digits: &[usize], max_len: usize) {
    assert!(
        digits.len() <= max_len,
        "{function}: {} digits, more than the {max_len} the encoding holds",
        digits.len()
    );
    if let Some(bad) = digits.iter().find(|&&d| d >= DIGITS) {
        panic!("{function}: token {bad} is not a digit (0..=9)");
    }
}

/// The string a decoder wrote: its tokens before the first [`END`], or `None` when it never
/// wrote one (an output that does not end is not a string).
pub fn decode_output(tokens: &[usize]) -> Option<Vec<usize>> {
    let end = tokens.iter().position(|&t| t == END)?;
    Some(tokens[..end].to_vec())
}

/// Whether a decoder's output `predicted` (tokens, as many as it ran steps) says exactly
/// `expected`: every digit right, none missing or extra, then [`END`]. What comes after the
/// [`END`] is not read.
pub fn exact_match(predicted: &[usize], expected: &[usize]) -> bool {
    decode_output(predicted).is_some_and(|string| string == expected)
}

/// How many of the target's tokens other than [`PAD`] (the digits and the [`END`]) `predicted`
/// has at the same position: the numerator of per-token accuracy.
///
/// # Panics
/// When the two differ in length.
pub fn token_matches(predicted: &[usize], target: &[usize]) -> usize {
    assert_eq!(
        predicted.len(),
        target.len(),
        "token_matches: {} predicted tokens for {} target tokens",
        predicted.len(),
        target.len()
    );
    predicted
        .iter()
        .zip(target)
        .filter(|&(p, t)| *t != PAD && p == t)
        .count()
}

/// Tokens as one-hot rows of [`VOCAB`] values, row-major; [`PAD`] is a row of zeros.
///
/// # Panics
/// On a token above [`PAD`].
pub fn one_hot<E: Dtype>(tokens: &[usize]) -> Vec<E> {
    let mut values = vec![E::default(); tokens.len() * VOCAB];
    for (row, &token) in tokens.iter().enumerate() {
        assert!(token <= PAD, "one_hot: token {token} is not in 0..={PAD}");
        if token != PAD {
            values[row * VOCAB + token] = E::ONE;
        }
    }
    values
}

/// The tokens of one-hot rows: the position of each row's one, [`PAD`] for a row of zeros.
///
/// # Panics
/// When the length is not a multiple of [`VOCAB`], or a row is neither one-hot nor zeros.
pub fn from_one_hot<E: Dtype>(values: &[E]) -> Vec<usize> {
    assert_eq!(
        values.len() % VOCAB,
        0,
        "from_one_hot: {} values are not rows of {VOCAB}",
        values.len()
    );
    values
        .chunks(VOCAB)
        .map(|row| {
            let ones: Vec<usize> = (0..VOCAB).filter(|&j| row[j] == E::ONE).collect();
            let zeros = row.iter().filter(|&&v| v == E::default()).count();
            match ones[..] {
                [] if zeros == VOCAB => PAD,
                [token] if zeros == VOCAB - 1 => token,
                _ => panic!("from_one_hot: the row {row:?} is not one-hot"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_the_exact_reverse() {
        let task = ReversalTask::new(3..=8);
        for digits in task.strings(200, 7) {
            let batch = task.batch(std::slice::from_ref(&digits));
            let string = decode_output(&batch.target).expect("the target ends");
            assert_eq!(string.len(), digits.len());
            for (i, d) in string.iter().enumerate() {
                assert_eq!(*d, digits[digits.len() - 1 - i]);
            }
        }
        assert_eq!(reverse(&[1, 2, 3, 4, 5, 6, 7, 8]), [8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn lays_out_source_target_and_decoder_input() {
        let task = ReversalTask::new(2..=4);
        let batch = task.batch(&[vec![1, 2, 3, 4], vec![5, 6]]);
        assert_eq!(batch.size, 2);
        assert_eq!(batch.source, [1, 2, 3, 4, PAD, PAD, 5, 6]);
        assert_eq!(batch.target, [4, 3, 2, 1, END, 6, 5, END, PAD, PAD]);
        assert_eq!(
            batch.decoder_input,
            [START, 4, 3, 2, 1, START, 6, 5, END, PAD]
        );
        assert_eq!(batch.decoder_input_at(0), [START, START]);
        assert_eq!(batch.decoder_input_at(3), [2, END]);
        assert_eq!(batch.target_at(2), [2, END]);
        assert_eq!(batch.target_at(4), [END, PAD]);
        assert_eq!(
            batch.targets_by_step(),
            [4, 6, 3, 5, 2, END, 1, PAD, END, PAD]
        );
        // 4 digits + END, 2 digits + END.
        assert_eq!(batch.target_tokens(), 8);
    }

    #[test]
    fn token_ids_are_in_range_and_lengths_fixed() {
        let task = ReversalTask::new(3..=8);
        let strings = task.strings(500, 1);
        let mut lengths_seen = [false; 9];
        for s in &strings {
            assert!((3..=8).contains(&s.len()));
            assert!(s.iter().all(|&d| d < DIGITS));
            lengths_seen[s.len()] = true;
        }
        assert_eq!(
            lengths_seen,
            [false, false, false, true, true, true, true, true, true]
        );
        let batch = task.batch(&strings);
        assert_eq!(batch.source.len(), 500 * 8);
        assert_eq!(batch.target.len(), 500 * 9);
        assert_eq!(batch.decoder_input.len(), 500 * 9);
        assert!(batch.source.iter().all(|&t| t < DIGITS || t == PAD));
        assert!(batch
            .target
            .iter()
            .all(|&t| t < DIGITS || t == END || t == PAD));
        assert!(batch.decoder_input.iter().all(|&t| t <= PAD));
        // Every target has exactly one END; every decoder input starts with START.
        for row in batch.target.chunks(9) {
            assert_eq!(row.iter().filter(|&&t| t == END).count(), 1);
        }
        assert!(batch.decoder_input.chunks(9).all(|row| row[0] == START));
    }

    #[test]
    fn is_deterministic_per_seed() {
        let task = ReversalTask::new(3..=8);
        assert_eq!(task.strings(50, 42), task.strings(50, 42));
        assert_ne!(task.strings(50, 42), task.strings(50, 43));
        let fixed = ReversalTask::new(8..=8);
        assert!(fixed.strings(20, 0).iter().all(|s| s.len() == 8));
    }

    #[test]
    fn encodings_round_trip() {
        let task = ReversalTask::new(1..=6);
        for digits in task.strings(100, 3) {
            assert_eq!(decode_source(&encode_source(&digits, 6)), digits);
            assert_eq!(
                decode_output(&encode_target(&digits, 6)),
                Some(digits.clone())
            );
            let source = encode_source(&digits, 6);
            assert_eq!(from_one_hot(&one_hot::<f32>(&source)), source);
        }
        let all: Vec<usize> = (0..=PAD).collect();
        assert_eq!(from_one_hot(&one_hot::<f64>(&all)), all);
    }

    #[test]
    fn one_hot_rows_have_a_single_one_and_pad_is_zeros() {
        let values = one_hot::<f32>(&[3, END, PAD]);
        assert_eq!(values.len(), 3 * VOCAB);
        let mut expected = vec![0.0; 3 * VOCAB];
        expected[3] = 1.0;
        expected[VOCAB + END] = 1.0;
        assert_eq!(values, expected);
    }

    #[test]
    fn source_tensor_is_one_hot_batch_major() {
        let dev = crate::test_device!();
        let task = ReversalTask::new(2..=3);
        let batch = task.batch(&[vec![7, 8, 9], vec![0, 1]]);
        let x = batch.source_one_hot::<f32, _>(&dev);
        assert_eq!(
            from_one_hot(&x.as_vec()),
            [7, 8, 9, PAD, 0, 1],
            "[B, L, VOCAB] in row-major order"
        );
    }

    #[test]
    fn exact_match_needs_every_digit_and_the_end() {
        let expected = [5, 1, 4, 1, 3];
        assert!(exact_match(&[5, 1, 4, 1, 3, END], &expected));
        // What follows END is not read.
        assert!(exact_match(&[5, 1, 4, 1, 3, END, 9, 9], &expected));
        // One digit wrong, one missing, one extra, no END at all.
        assert!(!exact_match(&[5, 1, 4, 2, 3, END], &expected));
        assert!(!exact_match(&[5, 1, 4, 1, END, 3], &expected));
        assert!(!exact_match(&[5, 1, 4, 1, 3, 3, END], &expected));
        assert!(!exact_match(&[5, 1, 4, 1, 3, 3], &expected));
        assert!(exact_match(&[END], &[]));
    }

    #[test]
    fn token_matches_count_digits_and_end_but_not_padding() {
        let target = encode_target(&[4, 2], 4); // [4, 2, END, PAD, PAD]
        assert_eq!(token_matches(&target, &target), 3);
        assert_eq!(token_matches(&[4, 9, END, PAD, PAD], &target), 2);
        // Tokens under padding are not counted, right or wrong.
        assert_eq!(token_matches(&[4, 2, 7, 7, 7], &target), 2);
        assert_eq!(token_matches(&[0, 0, 0, 0, 0], &target), 0);
    }

    #[test]
    #[should_panic(expected = "outside 3..=8")]
    fn rejects_a_string_of_the_wrong_length() {
        ReversalTask::new(3..=8).batch(&[vec![1, 2]]);
    }

    #[test]
    #[should_panic(expected = "token 10 is not a digit")]
    fn rejects_a_token_that_is_not_a_digit() {
        encode_source(&[1, START], 4);
    }
}
