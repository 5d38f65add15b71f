use typednet::network;

network! {
    #[exact_fit]
    pub struct Net: [6, 27, 27] -> avgpool(2);
}

fn main() {}
