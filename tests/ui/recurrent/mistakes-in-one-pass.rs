use typednet::network;

// Every recurrent mistake in one declaration is reported in one pass, each on its argument.
network! {
    pub struct Net: [_, 16]
        -> gru(32, output = first)
        -> rnn(0)
        -> lstm(8, bidirectional = 2)
        -> flatten
        -> linear(10);
}

network! {
    pub struct OnAVector: [64] -> mgu(8);
}

network! {
    pub struct RunTimeLengthOnlyFirst: [_, 3, 4] -> flatten;
}

fn main() {}
