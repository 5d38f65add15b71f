use typednet::network;

network! {
    pub struct Net: [1, 18446744073709551615, 4] -> conv(1, 3, pad = 9223372036854775807);
}

fn main() {}
