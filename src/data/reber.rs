//! The Reber grammar and the embedded Reber grammar (Reber 1967; as used by Fahlman 1991 and
//! Hochreiter & Schmidhuber 1997, experiment 1): strings of the seven symbols B, T, P, S, X, V,
//! E for next-symbol prediction.
//!
//! The Reber grammar is this finite automaton; a string starts with B in state 0 and is
//! accepted when E reaches state 7:
//!
//! ```text
//! 0 ─B→ 1    1 ─T→ 2    1 ─P→ 3
//! 2 ─S→ 2    2 ─X→ 4    3 ─T→ 3    3 ─V→ 5
//! 4 ─X→ 3    4 ─S→ 6    5 ─P→ 4    5 ─V→ 6    6 ─E→ 7
//! ```
//!
//! e.g. `BTSSXXTVVE`, `BPVVE`. The embedded grammar wraps a Reber string `R` as `BTRTE` or
//! `BPRPE`: the second-to-last symbol repeats the second, across all of `R`. Predicting it is
//! the long-term dependency; every other step needs only the last few symbols.
//!
//! Strings are generated as random walks: from each state, each outgoing symbol with equal
//! probability (1/2 where there are two).
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use typednet::data::reber::{parse, Grammar, Symbol};
//!
//! let grammar = Grammar::EmbeddedReber;
//! let string = grammar.generate(&mut StdRng::seed_from_u64(0));
//! assert!(grammar.accepts(&string));
//! assert_eq!(string[1], string[string.len() - 2]);
//!
//! let reber = parse("BTXXVPSE").unwrap();
//! assert!(Grammar::Reber.accepts(&reber));
//! // After "BTX" the grammar allows S or X.
//! let legal = Grammar::Reber.next_symbols(&reber[..3]).unwrap();
//! assert_eq!(legal.symbols(), vec![Symbol::S, Symbol::X]);
//! ```

use rand::Rng;

/// One of the seven symbols. Its one-hot index is its position in [`Symbol::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbol {
    /// Begin.
    B,
    /// T.
    T,
    /// P.
    P,
    /// S.
    S,
    /// X.
    X,
    /// V.
    V,
    /// End.
    E,
}

impl Symbol {
    /// The number of symbols, the width of a one-hot encoding.
    pub const COUNT: usize = 7;

    /// Every symbol, in one-hot order: B, T, P, S, X, V, E.
    pub const ALL: [Symbol; Self::COUNT] = [
        Symbol::B,
        Symbol::T,
        Symbol::P,
        Symbol::S,
        Symbol::X,
        Symbol::V,
        Symbol::E,
    ];

    /// The position of the symbol in [`Symbol::ALL`] (its one-hot index).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The symbol's letter.
    pub fn letter(self) -> char {
        b"BTPSXVE"[self.index()] as char
    }

    /// The symbol written `letter` (upper case), if any.
    pub fn from_letter(letter: char) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.letter() == letter)
    }
}

/// The symbols of `text`, or `None` if a character is not one of `BTPSXVE`.
pub fn parse(text: &str) -> Option<Vec<Symbol>> {
    text.chars().map(Symbol::from_letter).collect()
}

/// The letters of `symbols` as a string.
pub fn to_text(symbols: &[Symbol]) -> String {
    symbols.iter().map(|s| s.letter()).collect()
}

/// A set of symbols (a bit per symbol): the legal next symbols after a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SymbolSet(u8);

impl SymbolSet {
    /// The empty set.
    pub const EMPTY: SymbolSet = SymbolSet(0);

    /// The set of `symbols`.
    pub fn of(symbols: &[Symbol]) -> Self {
        symbols.iter().fold(Self::EMPTY, |set, &s| set.with(s))
    }

    /// This set with `symbol` added.
    pub fn with(self, symbol: Symbol) -> Self {
        SymbolSet(self.0 | 1 << symbol.index())
    }

    /// Whether `symbol` is in the set.
    pub fn contains(self, symbol: Symbol) -> bool {
        self.0 & 1 << symbol.index() != 0
    }

    /// The number of symbols in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty (after a complete string).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The symbols in the set, in one-hot order.
    pub fn symbols(self) -> Vec<Symbol> {
        Symbol::ALL
            .into_iter()
            .filter(|&s| self.contains(s))
            .collect()
    }

    /// The set as a multi-hot vector of [`Symbol::COUNT`] values (1 for a member, 0 otherwise):
    /// the target of a per-symbol sigmoid output.
    pub fn multi_hot(self) -> [f32; Symbol::COUNT] {
        Symbol::ALL.map(|s| if self.contains(s) { 1.0 } else { 0.0 })
    }
}

/// The one-hot encoding of `symbols`: `[L, 7]` row-major, row `t` has a 1 at `symbols[t]`'s
/// index.
pub fn one_hot(symbols: &[Symbol]) -> Vec<f32> {
    let mut encoded = vec![0.0; symbols.len() * Symbol::COUNT];
    for (t, s) in symbols.iter().enumerate() {
        encoded[t * Symbol::COUNT + s.index()] = 1.0;
    }
    encoded
}

/// A state of the Reber automaton (0 to 7, see the module docs).
type ReberState = u8;

/// The Reber automaton's transitions from `state`: `(symbol, next state)`.
fn reber_transitions(state: ReberState) -> &'static [(Symbol, ReberState)] {
    use Symbol::*;
    match state {
        0 => &[(B, 1)],
        1 => &[(T, 2), (P, 3)],
        2 => &[(S, 2), (X, 4)],
        3 => &[(T, 3), (V, 5)],
        4 => &[(X, 3), (S, 6)],
        5 => &[(P, 4), (V, 6)],
        6 => &[(E, 7)],
        _ => &[],
    }
}

/// Where a reader of the embedded grammar is: before the B, before the T or P, inside the
/// Reber string of the branch (`T` or `P`), before the branch's repetition, before the final
/// E, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmbeddedState {
    Start,
    Branch,
    Inner(Symbol, ReberState),
    Repeat(Symbol),
    Final,
    Done,
}

/// The two grammars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// The Reber grammar: the automaton of the module docs.
    Reber,
    /// The embedded Reber grammar: `BTRTE` or `BPRPE` for a Reber string `R`.
    EmbeddedReber,
}

/// A reader's state in either grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reber(ReberState),
    Embedded(EmbeddedState),
}

impl State {
    /// The legal symbols here, each with the state it leads to.
    fn transitions(self) -> Vec<(Symbol, State)> {
        use EmbeddedState::*;
        let reber = |state| {
            reber_transitions(state)
                .iter()
                .map(|&(s, next)| (s, State::Reber(next)))
                .collect()
        };
        let embedded = |pairs: &[(Symbol, EmbeddedState)]| {
            pairs
                .iter()
                .map(|&(s, next)| (s, State::Embedded(next)))
                .collect()
        };
        match self {
            State::Reber(state) => reber(state),
            State::Embedded(Start) => embedded(&[(Symbol::B, Branch)]),
            State::Embedded(Branch) => embedded(&[
                (Symbol::T, Inner(Symbol::T, 0)),
                (Symbol::P, Inner(Symbol::P, 0)),
            ]),
            State::Embedded(Inner(branch, state)) => reber_transitions(state)
                .iter()
                .map(|&(s, next)| {
                    let next = if next == 7 {
                        Repeat(branch)
                    } else {
                        Inner(branch, next)
                    };
                    (s, State::Embedded(next))
                })
                .collect(),
            State::Embedded(Repeat(branch)) => embedded(&[(branch, Final)]),
            State::Embedded(Final) => embedded(&[(Symbol::E, Done)]),
            State::Embedded(Done) => Vec::new(),
        }
    }

    /// The state after reading `symbol`, or `None` if it is not legal here.
    fn read(self, symbol: Symbol) -> Option<State> {
        self.transitions()
            .into_iter()
            .find(|&(s, _)| s == symbol)
            .map(|(_, next)| next)
    }

    /// Whether the string read so far is complete.
    fn is_final(self) -> bool {
        matches!(self, State::Reber(7) | State::Embedded(EmbeddedState::Done))
    }
}

impl Grammar {
    fn start(self) -> State {
        match self {
            Grammar::Reber => State::Reber(0),
            Grammar::EmbeddedReber => State::Embedded(EmbeddedState::Start),
        }
    }

    /// The state after reading `prefix`, or `None` if it leaves the grammar.
    fn read(self, prefix: &[Symbol]) -> Option<State> {
        prefix
            .iter()
            .try_fold(self.start(), |state, &s| state.read(s))
    }

    /// A string of the grammar, drawn as a random walk from `rng` (each legal symbol equally
    /// likely).
    pub fn generate<R: Rng + ?Sized>(self, rng: &mut R) -> Vec<Symbol> {
        let mut string = Vec::new();
        let mut state = self.start();
        loop {
            let transitions = state.transitions();
            if transitions.is_empty() {
                return string;
            }
            let (symbol, next) = transitions[rng.gen_range(0..transitions.len())];
            string.push(symbol);
            state = next;
        }
    }

    /// Whether `string` is a complete string of the grammar.
    pub fn accepts(self, string: &[Symbol]) -> bool {
        self.read(string).is_some_and(State::is_final)
    }

    /// The symbols that may follow `prefix`, or `None` if `prefix` is not the start of any
    /// string of the grammar. Empty after a complete string.
    pub fn next_symbols(self, prefix: &[Symbol]) -> Option<SymbolSet> {
        let state = self.read(prefix)?;
        Some(
            state
                .transitions()
                .into_iter()
                .fold(SymbolSet::EMPTY, |set, (s, _)| set.with(s)),
        )
    }

    /// The legal next symbols after each non-empty prefix of `string` that is not the whole
    /// string: element `t` is the set after `string[..=t]`, the target of a network that has
    /// read `string[t]` — `string.len() − 1` sets. `None` if `string` leaves the grammar.
    pub fn prediction_targets(self, string: &[Symbol]) -> Option<Vec<SymbolSet>> {
        let mut state = self.start();
        let mut targets = Vec::with_capacity(string.len().saturating_sub(1));
        for (t, &symbol) in string.iter().enumerate() {
            state = state.read(symbol)?;
            if t + 1 < string.len() {
                targets.push(SymbolSet::of(
                    &state
                        .transitions()
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect::<Vec<_>>(),
                ));
            }
        }
        Some(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use Symbol::*;

    fn symbols(text: &str) -> Vec<Symbol> {
        parse(text).unwrap()
    }

    #[test]
    fn letters_round_trip() {
        for s in Symbol::ALL {
            assert_eq!(Symbol::from_letter(s.letter()), Some(s));
        }
        assert_eq!(to_text(&symbols("BTSSXXTVVE")), "BTSSXXTVVE");
        assert_eq!(parse("BTA"), None);
    }

    #[test]
    fn known_reber_strings() {
        // Traced by hand on the automaton of the module docs.
        for valid in [
            "BTSSXXTVVE",
            "BTXXVPSE",
            "BPVVE",
            "BTXSE",
            "BPTVPXVVE",
            "BPVPSE",
        ] {
            assert!(Grammar::Reber.accepts(&symbols(valid)), "{valid}");
        }
        for invalid in [
            "BTSPE",       // S is followed by S or X in state 2
            "BTSSXXTVV",   // no final E
            "TSXSE",       // no initial B
            "BPVVEE",      // a symbol after the end
            "BTXXVPSEB",   // likewise
            "BPTTTTVPXXE", // X in state 3
            "",
        ] {
            assert!(!Grammar::Reber.accepts(&symbols(invalid)), "{invalid:?}");
        }
    }

    #[test]
    fn known_embedded_strings() {
        for valid in ["BTBTSSXXTVVETE", "BPBPVVEPE", "BTBTXSETE"] {
            assert!(Grammar::EmbeddedReber.accepts(&symbols(valid)), "{valid}");
        }
        for invalid in [
            "BTBTSSXXTVVEPE", // the repeated symbol differs from the second
            "BPBPVVETE",
            "BTSSXXTVVE", // a plain Reber string
            "BTBTSSXXTVVET",
            "BBTSSXXTVVEE",
        ] {
            assert!(
                !Grammar::EmbeddedReber.accepts(&symbols(invalid)),
                "{invalid}"
            );
        }
    }

    #[test]
    fn legal_next_symbols() {
        let set = |text: &str| SymbolSet::of(&symbols(text));
        let reber = Grammar::Reber;
        assert_eq!(reber.next_symbols(&[]), Some(set("B")));
        assert_eq!(reber.next_symbols(&symbols("B")), Some(set("TP")));
        assert_eq!(reber.next_symbols(&symbols("BTSS")), Some(set("SX")));
        assert_eq!(reber.next_symbols(&symbols("BTX")), Some(set("SX")));
        assert_eq!(reber.next_symbols(&symbols("BPTV")), Some(set("PV")));
        assert_eq!(reber.next_symbols(&symbols("BPVV")), Some(set("E")));
        assert_eq!(
            reber.next_symbols(&symbols("BPVVE")),
            Some(SymbolSet::EMPTY)
        );
        assert_eq!(reber.next_symbols(&symbols("BTT")), None);

        let embedded = Grammar::EmbeddedReber;
        assert_eq!(embedded.next_symbols(&symbols("B")), Some(set("TP")));
        assert_eq!(embedded.next_symbols(&symbols("BP")), Some(set("B")));
        assert_eq!(embedded.next_symbols(&symbols("BPB")), Some(set("TP")));
        assert_eq!(embedded.next_symbols(&symbols("BPBPVVE")), Some(set("P")));
        assert_eq!(embedded.next_symbols(&symbols("BTBPVVE")), Some(set("T")));
        assert_eq!(embedded.next_symbols(&symbols("BTBPVVET")), Some(set("E")));
    }

    #[test]
    fn prediction_targets_follow_each_prefix() {
        for grammar in [Grammar::Reber, Grammar::EmbeddedReber] {
            let mut rng = StdRng::seed_from_u64(8);
            for _ in 0..200 {
                let string = grammar.generate(&mut rng);
                let targets = grammar.prediction_targets(&string).unwrap();
                assert_eq!(targets.len(), string.len() - 1);
                for (t, target) in targets.iter().enumerate() {
                    assert_eq!(Some(*target), grammar.next_symbols(&string[..=t]));
                    // The symbol that does follow is always legal.
                    assert!(target.contains(string[t + 1]));
                }
            }
        }
        assert_eq!(Grammar::Reber.prediction_targets(&symbols("BTSPE")), None);
    }

    #[test]
    fn generated_strings_are_accepted() {
        let mut rng = StdRng::seed_from_u64(9);
        for grammar in [Grammar::Reber, Grammar::EmbeddedReber] {
            for _ in 0..2000 {
                let string = grammar.generate(&mut rng);
                assert!(grammar.accepts(&string), "{}", to_text(&string));
            }
        }
    }

    #[test]
    fn embedded_strings_repeat_the_second_symbol_before_the_end() {
        let mut rng = StdRng::seed_from_u64(10);
        let mut branches = SymbolSet::EMPTY;
        for _ in 0..2000 {
            let string = Grammar::EmbeddedReber.generate(&mut rng);
            let n = string.len();
            assert!(string[1] == T || string[1] == P);
            assert_eq!(string[n - 2], string[1], "{}", to_text(&string));
            assert!(
                Grammar::Reber.accepts(&string[2..n - 2]),
                "{}",
                to_text(&string)
            );
            branches = branches.with(string[1]);
        }
        assert_eq!(branches, SymbolSet::of(&[T, P]));
    }

    #[test]
    fn generation_is_deterministic_for_a_seed_and_reaches_every_symbol() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| Grammar::Reber.generate(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(11), draw(11));
        assert_ne!(draw(11), draw(12));
        let seen = draw(11)
            .iter()
            .flatten()
            .fold(SymbolSet::EMPTY, |set, &s| set.with(s));
        assert_eq!(seen.len(), Symbol::COUNT);
    }

    #[test]
    fn encodings() {
        let encoded = one_hot(&symbols("BTE"));
        assert_eq!(encoded.len(), 3 * Symbol::COUNT);
        assert_eq!(
            encoded,
            [
                [1., 0., 0., 0., 0., 0., 0.],
                [0., 1., 0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0., 0., 1.]
            ]
            .concat()
        );
        let set = SymbolSet::of(&[S, X]);
        assert_eq!(set.multi_hot(), [0., 0., 0., 1., 1., 0., 0.]);
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty() && SymbolSet::EMPTY.is_empty());
    }
}
