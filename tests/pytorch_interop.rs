//! PyTorch in and out (issue #9, part 2): checkpoints written by PyTorch, with PyTorch's own
//! names, load into `network!` models through a declared [`NameMap`] and reproduce PyTorch's
//! outputs; checkpoints typednet writes in PyTorch's naming load into PyTorch with
//! `load_state_dict(strict=True)`.
//!
//! Reference: `tools/pytorch_interop.py` (PyTorch 2.15). LeNet-5's files are committed
//! (`tests/fixtures/interop/`, 260 kB). ResNet-18's weights (45 MB, torchvision's `resnet18`,
//! random initialisation, batch norms given random statistics) stay out of git: the test
//! generates them into cargo's temporary directory when a Python with torch and torchvision is
//! found (`$TYPEDNET_PYTHON`, else `/tmp/ref/bin/python`, else `python3`), and otherwise skips
//! with a message. The export checks run the same script's `check` mode, under the same
//! condition; without PyTorch they still check, in Rust, that the exported names, shapes and
//! dtypes are exactly those of PyTorch's own file.

use std::path::{Path, PathBuf};
use std::process::Command;

use typednet::checkpoint::{Checkpoint, NameMap, SafeTensors, TensorRecord};
use typednet::prelude::*;

network! {
    /// LeNet-5 as the main job declares it.
    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten
        -> linear(120) -> relu -> linear(84) -> relu -> linear(10);

    /// ResNet's basic block, keeping the shape.
    block Basic(c) = residual(
        conv(c, 3, pad = 1, bias = false) -> batchnorm -> relu
            -> conv(c, 3, pad = 1, bias = false) -> batchnorm
    ) -> relu;

    /// The basic block that halves the size and projects the shortcut.
    block BasicDown(c) = residual(
        conv(c, 3, stride = 2, pad = 1, bias = false) -> batchnorm -> relu
            -> conv(c, 3, pad = 1, bias = false) -> batchnorm,
        shortcut = conv(c, 1, stride = 2, bias = false) -> batchnorm
    ) -> relu;

    /// ResNet-18 (torchvision's `resnet18`) on 64×64 inputs: the same layers and weights as at
    /// 224×224, since global average pooling makes the head independent of the size.
    pub struct ResNet18: [3, 64, 64]
        -> conv(64, 7, stride = 2, pad = 3, bias = false) -> batchnorm -> relu
        -> maxpool(3, stride = 2, pad = 1)
        -> Basic(64) -> Basic(64)
        -> BasicDown(128) -> Basic(128)
        -> BasicDown(256) -> Basic(256)
        -> BasicDown(512) -> Basic(512)
        -> global_avgpool -> linear(1000);
}

/// PyTorch's `LeNet5` module (in the script) calls its linear layers `fc1`, `fc2`, `fc3`; the
/// convolutions' names already agree.
fn lenet_names() -> NameMap {
    NameMap::pytorch()
        .layer("linear1", "fc1")
        .layer("linear2", "fc2")
        .layer("linear3", "fc3")
}

/// torchvision's names for ResNet-18: stage `s` block `b` is `layer{s}.{b}`, a block's third
/// convolution and batch norm (the projection shortcut) are `downsample.0` and `.1`.
fn resnet18_names() -> NameMap {
    let blocks = [
        ("basic1", "layer1.0"),
        ("basic2", "layer1.1"),
        ("basic_down1", "layer2.0"),
        ("basic3", "layer2.1"),
        ("basic_down2", "layer3.0"),
        ("basic4", "layer3.1"),
        ("basic_down3", "layer4.0"),
        ("basic5", "layer4.1"),
    ];
    let inside = [
        ("conv1", "conv1"),
        ("batchnorm1", "bn1"),
        ("conv2", "conv2"),
        ("batchnorm2", "bn2"),
        ("conv3", "downsample.0"),
        ("batchnorm3", "downsample.1"),
    ];
    let mut names = NameMap::pytorch()
        .layer("batchnorm1", "bn1")
        .layer("linear1", "fc");
    for (block, torch_block) in blocks {
        for (layer, torch_layer) in inside {
            names = names.layer(
                format!("{block}_{layer}"),
                format!("{torch_block}.{torch_layer}"),
            );
        }
    }
    names
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interop")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pytorch_interop");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn values(file: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let record = file
        .get(name)
        .unwrap_or_else(|| panic!("the file has no tensor {name:?}"));
    (record.shape.clone(), record.to_f32().expect("F32"))
}

/// A Python that has torch and torchvision, or the reason there is none.
fn python_with_torch() -> Result<String, String> {
    let candidates = std::env::var("TYPEDNET_PYTHON")
        .into_iter()
        .chain(["/tmp/ref/bin/python".to_string(), "python3".to_string()]);
    let mut tried = Vec::new();
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import torch, torchvision"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(python);
        }
        tried.push(python);
    }
    Err(format!(
        "no Python with torch and torchvision (tried {}; set TYPEDNET_PYTHON)",
        tried.join(", ")
    ))
}

fn run_script(python: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/pytorch_interop.py");
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("the script runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "tools/pytorch_interop.py {args:?} failed:\n{text}"
    );
    text
}

/// Writes `input` and typednet's `output` for the script's `check`.
fn write_io(path: &Path, input: (Vec<usize>, Vec<f32>), output: (Vec<usize>, Vec<f32>)) {
    SafeTensors {
        tensors: vec![
            (
                "input".to_string(),
                TensorRecord::from_f32(input.0, &input.1),
            ),
            (
                "output".to_string(),
                TensorRecord::from_f32(output.0, &output.1),
            ),
        ],
        metadata: Default::default(),
    }
    .write(path)
    .unwrap();
}

/// The largest absolute difference, after checking the lengths agree.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every name, dtype and shape of `exported` is in `reference` and the other way round, which is
/// what PyTorch's `load_state_dict(strict=True)` asks of a state dict.
fn assert_same_names_and_shapes(exported: &SafeTensors, reference: &SafeTensors) {
    let specs = |file: &SafeTensors| {
        let mut specs: Vec<(String, String)> = file
            .tensors
            .iter()
            .map(|(name, r)| (name.clone(), format!("{} {:?}", r.dtype, r.shape)))
            .collect();
        specs.sort();
        specs
    };
    assert_eq!(specs(exported), specs(reference));
}

#[test]
fn lenet5_loads_pytorch_weights_and_gives_pytorch_outputs() {
    let dev = Cpu::default();
    let mut net = LeNet5::<f32, Cpu>::new(&dev);
    net.load_safetensors_with(fixture("lenet.safetensors"), &lenet_names())
        .unwrap();
    // The weights are PyTorch's, in PyTorch's layouts.
    let file = SafeTensors::read(fixture("lenet.safetensors")).unwrap();
    assert_eq!(net.linear1.weight.as_vec(), values(&file, "fc1.weight").1);
    assert_eq!(net.conv2.weight.as_vec(), values(&file, "conv2.weight").1);

    let io = SafeTensors::read(fixture("lenet_io.safetensors")).unwrap();
    let (_, input) = values(&io, "input");
    let (_, expected) = values(&io, "output");
    let x: Tensor<Rank4<4, 1, 28, 28>, f32, Cpu> = dev.tensor_from_vec(input, Default::default());
    let y = net.forward(x).as_vec();
    let difference = max_difference(&y, &expected);
    assert!(
        difference <= 1e-5,
        "largest difference from PyTorch {difference:e}"
    );
}

#[test]
fn lenet5_exported_in_pytorch_naming_is_what_pytorch_loads() {
    let dev = Cpu::seed_from_u64(3);
    let net = LeNet5::<f32, Cpu>::new(&dev);
    let exported = scratch("lenet_typednet.safetensors");
    net.save_safetensors_with(&exported, &lenet_names())
        .unwrap();
    assert_same_names_and_shapes(
        &SafeTensors::read(&exported).unwrap(),
        &SafeTensors::read(fixture("lenet.safetensors")).unwrap(),
    );

    // Back into typednet through the same map: the same weights.
    let mut back = LeNet5::<f32, Cpu>::new(&Cpu::seed_from_u64(4));
    back.load_safetensors_with(&exported, &lenet_names())
        .unwrap();
    assert_eq!(back.conv1.weight.as_vec(), net.conv1.weight.as_vec());
    assert_eq!(back.linear3.bias.as_vec(), net.linear3.bias.as_vec());

    let io = SafeTensors::read(fixture("lenet_io.safetensors")).unwrap();
    let input = values(&io, "input");
    let x: Tensor<Rank4<4, 1, 28, 28>, f32, Cpu> =
        dev.tensor_from_vec(input.1.clone(), Default::default());
    let output = (vec![4, 10], net.forward(x).as_vec());
    let expected = scratch("lenet_typednet_io.safetensors");
    write_io(&expected, input, output);
    match python_with_torch() {
        Ok(python) => {
            let report = run_script(
                &python,
                &[
                    "check",
                    "lenet",
                    exported.to_str().unwrap(),
                    expected.to_str().unwrap(),
                ],
            );
            eprintln!("{report}");
        }
        Err(why) => eprintln!("skipping PyTorch's side of the LeNet-5 export check: {why}"),
    }
}

#[test]
fn resnet18_from_torchvision_gives_its_outputs_and_goes_back() {
    let python = match python_with_torch() {
        Ok(python) => python,
        Err(why) => {
            eprintln!("skipping the ResNet-18 round trip: {why}");
            return;
        }
    };
    let dir = scratch("");
    run_script(&python, &["resnet18", dir.to_str().unwrap()]);
    let weights = dir.join("resnet18.safetensors");

    let dev = Cpu::default();
    let mut net = ResNet18::<f32, Cpu>::new(&dev);
    net.load_safetensors_with(&weights, &resnet18_names())
        .unwrap();
    let io = SafeTensors::read(dir.join("resnet18_io.safetensors")).unwrap();
    let input = values(&io, "input");
    let (_, expected) = values(&io, "output");
    let x: Tensor<Rank4<2, 3, 64, 64>, f32, Cpu> =
        dev.tensor_from_vec(input.1.clone(), Default::default());
    // Evaluation mode: no tape, so batch norm uses the running statistics, as `model.eval()`.
    let y = net.forward(x).as_vec();
    let difference = max_difference(&y, &expected);
    assert!(
        difference <= 1e-4,
        "largest difference from PyTorch {difference:e}"
    );

    // And out again: PyTorch loads typednet's export strictly and gets typednet's outputs.
    let exported = dir.join("resnet18_typednet.safetensors");
    net.save_safetensors_with(&exported, &resnet18_names())
        .unwrap();
    assert_same_names_and_shapes(
        &SafeTensors::read(&exported).unwrap(),
        &SafeTensors::read(&weights).unwrap(),
    );
    let typednet_io = dir.join("resnet18_typednet_io.safetensors");
    write_io(&typednet_io, input, (vec![2, 1000], y));
    let report = run_script(
        &python,
        &[
            "check",
            "resnet18",
            exported.to_str().unwrap(),
            typednet_io.to_str().unwrap(),
        ],
    );
    eprintln!("{report}");
}
