use typednet::network;

network! {
    // With dilation 2, a 3×3 filter spans 5×5: (10 − 5)/2 + 1 = 3.5 does not tile.
    #[exact_fit]
    pub struct Net: [1, 10, 10] -> conv(4, 3, stride = 2, dilation = 2);
}

fn main() {}
