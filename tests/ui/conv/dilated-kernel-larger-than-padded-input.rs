use typednet::network;

network! {
    // A 3×3 filter with dilation 4 spans 9×9, more than the padded 7×7.
    pub struct Net: [1, 5, 5] -> conv(4, 3, pad = 1, dilation = 4);
}

fn main() {}
