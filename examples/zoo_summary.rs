//! The zoo's summaries at scale: ResNet-50 and GoogLeNet as Keras-style tables, and every net's
//! parameter count (equal to torchvision's where it has the net; see `tests/zoo.rs`).
//!
//! `cargo run --example zoo_summary` (add `all` to print every net's table).
//!
//! The declarations are in `examples/zoo/nets.rs`; every shape in them was checked when this
//! example compiled.

use typednet::prelude::*;

include!("zoo/nets.rs");

fn main() {
    let all = std::env::args().nth(1).as_deref() == Some("all");
    println!("{}", <ResNet50 as Network>::summary());
    println!("{}", <GoogLeNet as Network>::summary());
    if all {
        for table in [
            <LeNet5Classic as Network>::summary(),
            <AlexNet as Network>::summary(),
            <ZfNet as Network>::summary(),
            <Vgg16 as Network>::summary(),
            <ResNet18 as Network>::summary(),
        ] {
            println!("{table}");
        }
    }
    println!("parameters:");
    for (name, count) in [
        ("LeNet-5 (1998)", <LeNet5Classic>::PARAMETERS),
        ("AlexNet (torchvision)", <AlexNet>::PARAMETERS),
        ("ZFNet", <ZfNet>::PARAMETERS),
        ("VGG-16", <Vgg16>::PARAMETERS),
        ("ResNet-18", <ResNet18>::PARAMETERS),
        ("ResNet-50", <ResNet50>::PARAMETERS),
        ("GoogLeNet", <GoogLeNet>::PARAMETERS),
    ] {
        println!("  {name:<24}{count:>14}");
    }
}
