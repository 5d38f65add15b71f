use typednet::network;

network! {
    // VGG-16 with the last max pooling left out: the classifier still states its 512·7·7
    // inputs, but receives 512·14·14.
    pub struct Vgg16: [3, 224, 224]
        -> [conv(64, 3, pad = 1) -> relu] * 2 -> maxpool(2)
        -> [conv(128, 3, pad = 1) -> relu] * 2 -> maxpool(2)
        -> [conv(256, 3, pad = 1) -> relu] * 3 -> maxpool(2)
        -> [conv(512, 3, pad = 1) -> relu] * 3 -> maxpool(2)
        -> [conv(512, 3, pad = 1) -> relu] * 3
        -> flatten
        -> linear(25088, 4096) -> relu -> dropout(0.5)
        -> linear(4096, 4096) -> relu -> dropout(0.5)
        -> linear(1000);
}

fn main() {}
