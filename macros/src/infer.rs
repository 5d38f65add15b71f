//! Stages 2 and 3: infer the shape after every layer and check each layer against the shape it
//! receives. Every mistake becomes a `syn::Error` spanned on the argument at fault; inference goes
//! on after an error wherever a shape can still be recovered, so one pass reports them all.

use proc_macro2::Span;
use syn::Ident;

use crate::arith::{self, FitMode, WindowAxis};
use crate::ast::{
    closest_kind, Arg, ArgValue, BlockDecl, Item, Layer, Number, ShapeLiteral, SpanRange,
};

/// The shape of one example (the batch dimension is implicit).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    Vector(usize),
    Image {
        c: usize,
        h: usize,
        w: usize,
    },
    /// `[T, F]`: `steps` vectors of `features`; `steps` is `None` for a length known only at
    /// run time (`[_, F]`).
    Sequence {
        steps: Option<usize>,
        features: usize,
    },
}

/// How a run-time sequence length appears in `dims` (and in the generated `&[usize]` shapes):
/// no real dimension is 0, and the runtime's `format_shape` prints it as `T`.
pub const RUN_TIME_STEPS: usize = 0;

impl Shape {
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Vector(f) => vec![f],
            Shape::Image { c, h, w } => vec![c, h, w],
            Shape::Sequence { steps, features } => {
                vec![steps.unwrap_or(RUN_TIME_STEPS), features]
            }
        }
    }

    /// Number of elements, or `None` when it overflows `usize` or the length is a run-time one.
    pub fn elements(&self) -> Option<usize> {
        if let Shape::Sequence { steps: None, .. } = self {
            return None;
        }
        self.dims()
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d))
    }

    pub fn describe(&self) -> String {
        let dims: Vec<String> = self
            .dims()
            .iter()
            .map(|&d| match d {
                RUN_TIME_STEPS => "T".to_string(),
                d => d.to_string(),
            })
            .collect();
        format!("[{}]", dims.join(", "))
    }

    /// What the shape is, for messages: "the vector [784]", "the image [1, 28, 28]".
    pub fn described_kind(&self) -> String {
        let kind = match self {
            Shape::Vector(_) => "vector",
            Shape::Image { .. } => "image",
            Shape::Sequence { .. } => "sequence",
        };
        format!("the {kind} {}", self.describe())
    }
}

/// What a layer lowers to, with every size resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Linear {
        input: usize,
        output: usize,
    },
    Conv {
        input_channels: usize,
        output_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        /// `false` for `conv(…, bias = false)`.
        bias: bool,
        /// `conv(…, groups = G)`: each filter sees `input_channels / groups` channels.
        groups: usize,
        /// `conv(…, dilation = d)`: the filter taps are `d` apart (1: adjacent).
        dilation: [usize; 2],
    },
    /// A locally-connected layer: a convolution whose filters are not shared, one bank per
    /// output position.
    LocallyConnected {
        input_channels: usize,
        output_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        /// Output `[height, width]`: the number of filter banks.
        output: [usize; 2],
    },
    ConvTranspose {
        input_channels: usize,
        output_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        output_padding: [usize; 2],
    },
    MaxPool {
        window: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        /// Height and width of the input with its padding.
        padded: [usize; 2],
    },
    AvgPool {
        window: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        padded: [usize; 2],
    },
    Flatten,
    /// The mean of each channel over height and width: `[C, H, W]` → `[C]`.
    GlobalAvgPool,
    /// Local response normalisation over `size` channels of a `[channels, H, W]` image.
    LocalResponseNorm {
        size: usize,
        alpha: f64,
        beta: f64,
        k: f64,
        channels: usize,
        plane: usize,
    },
    /// Batch normalisation of `features` channels (an image) or features (a vector).
    BatchNorm {
        features: usize,
        image: bool,
    },
    Reshape,
    /// `[C, H, W]` read as a sequence of its `H` rows, each `C·W` values.
    Rows,
    /// `[C, H, W]` read as a sequence of its `W` columns, each `C·H` values.
    Columns,
    /// A recurrent layer over a sequence `[T, input]`: `[T, hidden]` (or `2·hidden` when
    /// bidirectional) for every step, or the last state alone with `last`.
    Recurrent {
        cell: Cell,
        input: usize,
        hidden: usize,
        last: bool,
        bidirectional: bool,
    },
    Dropout(f64),
    /// `max(0, x) + slope·min(0, x)`.
    LeakyRelu(f64),
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    LogSoftmax,
    /// The element-wise sum closing a `residual`.
    Add,
    /// The join closing a `concat`.
    Concat,
    /// Marks the end of a `head`'s chain, whose output it holds (for tables).
    Head,
}

impl Op {
    /// Trainable parameters, counted as PyTorch counts them.
    pub fn parameters(&self) -> usize {
        match *self {
            Op::Linear { input, output } => input * output + output,
            Op::Conv {
                input_channels,
                output_channels,
                kernel,
                bias,
                groups,
                ..
            } => {
                output_channels * (input_channels / groups) * kernel[0] * kernel[1]
                    + if bias { output_channels } else { 0 }
            }
            Op::LocallyConnected {
                input_channels,
                output_channels,
                kernel,
                output,
                ..
            } => {
                output[0]
                    * output[1]
                    * (input_channels * kernel[0] * kernel[1] + 1)
                    * output_channels
            }
            Op::ConvTranspose {
                input_channels,
                output_channels,
                kernel,
                ..
            } => output_channels * input_channels * kernel[0] * kernel[1] + output_channels,
            // γ and β; the running statistics are buffers, not parameters (as in PyTorch).
            Op::BatchNorm { features, .. } => 2 * features,
            Op::Recurrent {
                cell,
                input,
                hidden,
                bidirectional,
                ..
            } => {
                let direction = cell.gates() * (hidden * input + hidden * hidden + 2 * hidden)
                    + cell.peepholes() * hidden;
                if bidirectional {
                    2 * direction
                } else {
                    direction
                }
            }
            _ => 0,
        }
    }
}

/// The recurrent cells, one per layer kind (`typednet::recurrent`'s cells).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Elman,
    LstmNoForget,
    Lstm,
    PeepholeLstm,
    Gru,
    TorchGru,
    Mgu,
}

impl Cell {
    /// The cell of a layer kind, e.g. `lstm`.
    pub fn of_kind(kind: &str) -> Option<Cell> {
        Some(match kind {
            "rnn" => Cell::Elman,
            "lstm_no_forget" => Cell::LstmNoForget,
            "lstm" => Cell::Lstm,
            "peephole_lstm" => Cell::PeepholeLstm,
            "gru" => Cell::Gru,
            "torch_gru" => Cell::TorchGru,
            "mgu" => Cell::Mgu,
            _ => return None,
        })
    }

    /// The type's name in `typednet::recurrent`.
    pub fn type_name(self) -> &'static str {
        match self {
            Cell::Elman => "ElmanCell",
            Cell::LstmNoForget => "LstmNoForgetCell",
            Cell::Lstm => "LstmCell",
            Cell::PeepholeLstm => "PeepholeLstmCell",
            Cell::Gru => "GruCell",
            Cell::TorchGru => "TorchGruCell",
            Cell::Mgu => "MguCell",
        }
    }

    /// Gates with an input and a recurrent weight matrix and two biases each.
    fn gates(self) -> usize {
        match self {
            Cell::Elman => 1,
            Cell::Mgu => 2,
            Cell::LstmNoForget | Cell::Gru | Cell::TorchGru => 3,
            Cell::Lstm | Cell::PeepholeLstm => 4,
        }
    }

    /// Diagonal peephole vectors of length `hidden` (input, forget and output gates).
    fn peepholes(self) -> usize {
        match self {
            Cell::PeepholeLstm => 3,
            _ => 0,
        }
    }
}

pub struct InferredLayer {
    /// The declared or generated name; a struct field when the layer has parameters.
    pub name: Ident,
    pub layer: Layer,
    pub op: Op,
    pub output: Shape,
}

/// A network is a chain of nodes; a branch node holds chains of its own.
pub enum Node {
    Layer(InferredLayer),
    /// `residual(body, shortcut = …)`; `merge` is the addition (op [`Op::Add`]), with the
    /// output shape.
    Residual {
        body: Vec<Node>,
        shortcut: Option<Vec<Node>>,
        merge: InferredLayer,
    },
    /// `concat(branch, …)`; `merge` is the concatenation (op [`Op::Concat`]).
    Concat {
        branches: Vec<Vec<Node>>,
        merge: InferredLayer,
    },
    /// `name: head(chain)`: a side output; the main chain goes on with `input`. `marker`
    /// (op [`Op::Head`]) is named after the head and holds the head's output shape.
    Head {
        body: Vec<Node>,
        input: Shape,
        marker: InferredLayer,
    },
}

impl Node {
    fn output(&self) -> Shape {
        match self {
            Node::Layer(layer) => layer.output,
            Node::Residual { merge, .. } | Node::Concat { merge, .. } => merge.output,
            Node::Head { input, .. } => *input,
        }
    }

    /// Every layer, in the order `forward` runs them: a branch node's chains, then its merge.
    fn collect<'a>(&'a self, out: &mut Vec<&'a InferredLayer>) {
        match self {
            Node::Layer(layer) => out.push(layer),
            Node::Residual {
                body,
                shortcut,
                merge,
            } => {
                body.iter().for_each(|n| n.collect(out));
                shortcut.iter().flatten().for_each(|n| n.collect(out));
                out.push(merge);
            }
            Node::Concat { branches, merge } => {
                branches.iter().flatten().for_each(|n| n.collect(out));
                out.push(merge);
            }
            Node::Head { body, marker, .. } => {
                body.iter().for_each(|n| n.collect(out));
                out.push(marker);
            }
        }
    }
}

pub struct InferredNetwork {
    pub input: Shape,
    pub nodes: Vec<Node>,
}

impl InferredNetwork {
    pub fn output(&self) -> Shape {
        self.nodes.last().map_or(self.input, Node::output)
    }

    /// Every layer, branches included, in the order `forward` runs them.
    pub fn layers(&self) -> Vec<&InferredLayer> {
        let mut out = Vec::new();
        self.nodes.iter().for_each(|n| n.collect(&mut out));
        out
    }
}

/// Infers and checks a chain. `Err` holds every error found, combined.
pub fn infer(
    input: &ShapeLiteral,
    items: &[Item],
    exact_fit: bool,
    blocks: &[BlockDecl],
) -> Result<InferredNetwork, syn::Error> {
    let mut errors = Errors::default();
    let input_shape = input_shape(input, &mut errors);
    let mut unroll = Unroll {
        blocks,
        errors: &mut errors,
        active: Vec::new(),
        names: Vec::new(),
    };
    let trees = unroll.chain(items, &Scope::default(), &mut Counts::default());
    let mode = if exact_fit {
        FitMode::Exact
    } else {
        FitMode::Floor
    };
    let (nodes, _) = infer_chain(trees, input_shape, mode, &mut errors);
    errors.finish()?;
    match input_shape {
        Some(input) => Ok(InferredNetwork { input, nodes }),
        None => Err(syn::Error::new(input.span, "invalid input shape")),
    }
}

#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> Result<(), syn::Error> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn input_shape(input: &ShapeLiteral, errors: &mut Errors) -> Option<Shape> {
    let dims = &input.dims;
    for d in dims {
        if d.value == 0 {
            errors.push(syn::Error::new(
                d.span,
                "input dimension is 0: every dimension of the input shape must be at least 1",
            ));
            return None;
        }
    }
    if let Some(span) = input.run_time_steps {
        return match dims.as_slice() {
            [f] => Some(Shape::Sequence {
                steps: None,
                features: f.value,
            }),
            _ => {
                errors.push(syn::Error::new(
                    span,
                    "only a sequence's length may be left to run time: `[_, F]`",
                ));
                None
            }
        };
    }
    match dims.as_slice() {
        [f] => Some(Shape::Vector(f.value)),
        [t, f] => {
            let shape = Shape::Sequence {
                steps: Some(t.value),
                features: f.value,
            };
            if shape.elements().is_none() {
                errors.push(syn::Error::new(
                    input.span,
                    "input shape has more elements than fit in a usize",
                ));
                return None;
            }
            Some(shape)
        }
        [c, h, w] => {
            let shape = Shape::Image {
                c: c.value,
                h: h.value,
                w: w.value,
            };
            if shape.elements().is_none() {
                errors.push(syn::Error::new(
                    input.span,
                    "input shape has more elements than fit in a usize",
                ));
                return None;
            }
            Some(shape)
        }
        _ => {
            errors.push(syn::Error::new(
                input.span,
                format!(
                    "input shape must be a vector `[F]`, a sequence `[T, F]` (`[_, F]` for a run-time length) or an image `[C, H, W]`, found {} dimension(s)",
                    dims.len()
                ),
            ));
            None
        }
    }
}

/// The declaration with repeats unrolled, blocks expanded and every layer named: what shape
/// inference walks.
enum Tree {
    Layer(Layer, Ident),
    Residual {
        span: SpanRange,
        name: Ident,
        body: Vec<Tree>,
        shortcut: Option<(Vec<Tree>, SpanRange)>,
    },
    Concat {
        span: SpanRange,
        name: Ident,
        branches: Vec<(Vec<Tree>, SpanRange)>,
    },
    Head {
        span: SpanRange,
        name: Ident,
        body: Vec<Tree>,
    },
}

/// Where layers are being named: inside a block call, names get the call's prefix
/// (`basic3_conv1`), its numbers replace the block's parameters, and errors point at the call.
#[derive(Default, Clone)]
struct Scope {
    prefix: String,
    arguments: Vec<(String, Number)>,
    call_span: Option<SpanRange>,
    /// Inside `[…] * N`: `_1`, `_2`, … appended to declared names (`_2_1` when nested).
    repeat_suffix: String,
    /// Inside a `residual`, `concat` or `head` chain, where a `head` may not stand: its output
    /// is returned from `forward_with_heads`, so it must be on the main chain.
    in_branch: bool,
}

/// How many layers of each kind (and calls of each block) a scope has named so far.
#[derive(Default)]
struct Counts(Vec<(String, usize)>);

impl Counts {
    fn next(&mut self, kind: &str) -> usize {
        match self.0.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.0.push((kind.to_string(), 1));
                1
            }
        }
    }
}

struct Unroll<'a> {
    blocks: &'a [BlockDecl],
    errors: &'a mut Errors,
    /// Blocks being expanded, innermost last: a block that calls itself is an error.
    active: Vec<String>,
    names: Vec<Ident>,
}

impl Unroll<'_> {
    fn chain(&mut self, items: &[Item], scope: &Scope, counts: &mut Counts) -> Vec<Tree> {
        let mut out = Vec::new();
        for item in items {
            self.item(item, scope, counts, &mut out);
        }
        out
    }

    fn item(&mut self, item: &Item, scope: &Scope, counts: &mut Counts, out: &mut Vec<Tree>) {
        match item {
            Item::Layer(layer) => {
                let kind = syn::ext::IdentExt::unraw(&layer.kind).to_string();
                let is_builtin = crate::ast::LAYER_KINDS.contains(&kind.as_str());
                match self.blocks.iter().find(|b| b.name == kind) {
                    Some(block) if !is_builtin => self.call(block, layer, scope, counts, out),
                    _ => {
                        let layer = scope.apply(layer);
                        let name =
                            self.name(&kind, layer.name.as_ref(), layer.kind.span(), scope, counts);
                        out.push(Tree::Layer(layer, name));
                    }
                }
            }
            Item::Repeat { items, count } => {
                if count.value == 0 {
                    self.errors.push(syn::Error::new(
                        count.span,
                        "a group repeated 0 times has no layers: use `* 1` or remove the group",
                    ));
                    return;
                }
                // A large count is almost surely a typo; it would also blow up the expansion.
                if count.value > 1024 {
                    self.errors.push(syn::Error::new(
                        count.span,
                        format!(
                            "a group repeated {} times is too deep; at most 1024",
                            count.value
                        ),
                    ));
                    return;
                }
                for repeat in 0..count.value {
                    let mut scope = scope.clone();
                    scope.repeat_suffix = format!("{}_{}", scope.repeat_suffix, repeat + 1);
                    for item in items {
                        self.item(item, &scope, counts, out);
                    }
                }
            }
            Item::Residual {
                span,
                body,
                shortcut,
            } => {
                let span = scope.span(*span);
                let name = self.name("add", None, span.start, scope, counts);
                let scope = &scope.branch();
                let body = self.chain(&body.items, scope, counts);
                let shortcut = shortcut
                    .as_ref()
                    .map(|s| (self.chain(&s.items, scope, counts), scope.span(s.span)));
                out.push(Tree::Residual {
                    span,
                    name,
                    body,
                    shortcut,
                });
            }
            Item::Concat { span, branches } => {
                let span = scope.span(*span);
                let name = self.name("concat", None, span.start, scope, counts);
                let scope = &scope.branch();
                let branches = branches
                    .iter()
                    .map(|b| (self.chain(&b.items, scope, counts), scope.span(b.span)))
                    .collect();
                out.push(Tree::Concat {
                    span,
                    name,
                    branches,
                });
            }
            Item::Head {
                span,
                name: declared,
                body,
            } => {
                let span = scope.span(*span);
                let name = self.name("head", declared.as_ref(), span.start, scope, counts);
                if scope.in_branch {
                    self.errors.push(span.error(format!(
                        "{name}: a `head` must be on the main chain, not inside `residual`, `concat` or another `head`: its output is returned beside the network's"
                    )));
                    return;
                }
                let body = self.chain(&body.items, &scope.branch(), counts);
                out.push(Tree::Head { span, name, body });
            }
        }
    }

    /// Expands `Block(args)`: the block's items with its parameters bound to the numbers given.
    fn call(
        &mut self,
        block: &BlockDecl,
        call: &Layer,
        scope: &Scope,
        counts: &mut Counts,
        out: &mut Vec<Tree>,
    ) {
        let name = block.name.to_string();
        let call = scope.apply(call);
        let call_span = scope.call_span.unwrap_or(call.span);
        if self.active.contains(&name) {
            self.errors.push(call_span.error(format!(
                "block `{name}` uses itself; a block may use other blocks, not itself"
            )));
            return;
        }
        let Ok(items) = &block.items else {
            // Its syntax error is reported once, at the block.
            return;
        };
        if call.name.is_some() {
            self.errors.push(call.span.error(format!(
                "a block call cannot be named; its layers are named after it (`{}1_conv1`, …)",
                snake_case(&name)
            )));
        }
        if call.args.len() != block.params.len() {
            let params: Vec<String> = block.params.iter().map(|p| p.to_string()).collect();
            self.errors.push(call_span.error(format!(
                "block `{name}` takes {} argument(s), `{name}({})`, found {}",
                block.params.len(),
                params.join(", "),
                call.args.len()
            )));
            return;
        }
        let mut arguments = Vec::new();
        for (param, arg) in block.params.iter().zip(&call.args) {
            match (&arg.name, &arg.value) {
                (None, ArgValue::Int(n)) => arguments.push((param.to_string(), *n)),
                _ => {
                    self.errors.push(arg.span.error(format!(
                        "block `{name}`: argument `{param}` must be a whole number"
                    )));
                    return;
                }
            }
        }
        let instance = counts.next(&name);
        let inner = Scope {
            prefix: format!("{}{}{instance}_", scope.prefix, snake_case(&name)),
            arguments,
            call_span: Some(call_span),
            repeat_suffix: String::new(),
            in_branch: scope.in_branch,
        };
        self.active.push(name);
        let trees = self.chain(items, &inner, &mut Counts::default());
        self.active.pop();
        out.extend(trees);
    }

    /// The declared name or `kind` and its position, with the scope's prefix; reports a
    /// duplicate.
    fn name(
        &mut self,
        kind: &str,
        declared: Option<&Ident>,
        span: Span,
        scope: &Scope,
        counts: &mut Counts,
    ) -> Ident {
        let position = counts.next(kind);
        let base = match declared {
            Some(name) => {
                let name = syn::ext::IdentExt::unraw(name).to_string();
                format!("{name}{}", scope.repeat_suffix)
            }
            None => format!("{kind}{position}"),
        };
        let span = declared.map_or(span, |n| scope.call_span.map_or(n.span(), |c| c.start));
        let name = Ident::new(&format!("{}{base}", scope.prefix), span);
        if self.names.contains(&name) {
            self.errors.push(syn::Error::new(
                name.span(),
                format!("two layers are named `{name}`: layer names must be unique"),
            ));
        }
        self.names.push(name.clone());
        name
    }
}

impl Scope {
    /// This scope, inside a branch's chain.
    fn branch(&self) -> Scope {
        Scope {
            in_branch: true,
            ..self.clone()
        }
    }

    /// The layer as this scope sees it: parameters replaced by the call's numbers, and inside
    /// a block every span moved to the call, since the block's text is shared by every call.
    fn apply(&self, layer: &Layer) -> Layer {
        let mut layer = layer.clone();
        if let Some(call) = self.call_span {
            layer.span = call;
            for arg in &mut layer.args {
                arg.span = call;
                match &mut arg.value {
                    ArgValue::Int(n) => n.span = call.start,
                    ArgValue::Float { span, .. } => *span = call.start,
                    ArgValue::Pair(h, w, range) => {
                        h.span = call.start;
                        w.span = call.start;
                        *range = call;
                    }
                    ArgValue::Bool(_, span) => *span = call.start,
                    ArgValue::Word(_) => {}
                }
            }
        }
        let mut substituted = false;
        for arg in &mut layer.args {
            if let ArgValue::Word(word) = &arg.value {
                if let Some((_, n)) = self.arguments.iter().find(|(p, _)| word == p) {
                    arg.value = ArgValue::Int(*n);
                    arg.span = SpanRange::single(n.span);
                    substituted = true;
                }
            }
        }
        if substituted {
            layer.text = crate::ast::layer_text(&layer);
        }
        layer
    }

    fn span(&self, span: SpanRange) -> SpanRange {
        self.call_span.unwrap_or(span)
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Walks a chain from `input`, returning its nodes and output shape (`None` once unknown).
fn infer_chain(
    trees: Vec<Tree>,
    input: Option<Shape>,
    mode: FitMode,
    errors: &mut Errors,
) -> (Vec<Node>, Option<Shape>) {
    let mut shape = input;
    let mut nodes = Vec::new();
    for tree in trees {
        let (node, output) = infer_tree(tree, shape, mode, errors);
        shape = output;
        nodes.extend(node);
    }
    (nodes, shape)
}

fn infer_tree(
    tree: Tree,
    input: Option<Shape>,
    mode: FitMode,
    errors: &mut Errors,
) -> (Option<Node>, Option<Shape>) {
    match tree {
        Tree::Layer(layer, name) => {
            let mut ctx = LayerContext {
                layer: &layer,
                name: name.to_string(),
                errors,
            };
            // With an unknown input (after an error), a layer is still checked for mistakes
            // that do not depend on it, and may produce a known shape again (`linear(10)`).
            match infer_layer(&mut ctx, input, mode) {
                Some((op, output)) => (
                    Some(Node::Layer(InferredLayer {
                        name,
                        layer,
                        op,
                        output,
                    })),
                    Some(output),
                ),
                None => (None, None),
            }
        }
        Tree::Residual {
            span,
            name,
            body,
            shortcut,
        } => {
            let (body, body_out) = infer_chain(body, input, mode, errors);
            let (shortcut, output) = match shortcut {
                None => {
                    if let (Some(input), Some(out)) = (input, body_out) {
                        if input != out {
                            errors.push(span.error(format!(
                                "{name}: the residual body maps {} to {}, but an identity shortcut adds the input back unchanged; the body must keep the shape, or add a projection{}",
                                input.describe(),
                                out.describe(),
                                projection_hint(input, out)
                            )));
                        }
                    }
                    (None, body_out)
                }
                Some((trees, shortcut_span)) => {
                    let (nodes, out) = infer_chain(trees, input, mode, errors);
                    if let (Some(body_out), Some(out)) = (body_out, out) {
                        if body_out != out {
                            errors.push(shortcut_span.error(format!(
                                "{name}: the shortcut gives {} but the residual body gives {}; the two are added element by element and must have the same shape",
                                out.describe(),
                                body_out.describe()
                            )));
                        }
                    }
                    (Some(nodes), body_out.or(out))
                }
            };
            let Some(output) = output else {
                return (None, None);
            };
            let merge = merge_layer(name, "residual", "add", span, Op::Add, output);
            (
                Some(Node::Residual {
                    body,
                    shortcut,
                    merge,
                }),
                Some(output),
            )
        }
        Tree::Head { span, name, body } => {
            let (body, output) = infer_chain(body, input, mode, errors);
            let (Some(input), Some(output)) = (input, output) else {
                return (None, input);
            };
            let marker = merge_layer(name, "head", "head", span, Op::Head, output);
            (
                Some(Node::Head {
                    body,
                    input,
                    marker,
                }),
                Some(input),
            )
        }
        Tree::Concat {
            span,
            name,
            branches,
        } => {
            let mut nodes = Vec::new();
            let mut outputs = Vec::new();
            for (trees, branch_span) in branches {
                let (branch, out) = infer_chain(trees, input, mode, errors);
                nodes.push(branch);
                outputs.push((out, branch_span));
            }
            let output = concat_output(&name, &outputs, errors);
            let Some(output) = output else {
                return (None, None);
            };
            let merge = merge_layer(name, "concat", "concat", span, Op::Concat, output);
            (
                Some(Node::Concat {
                    branches: nodes,
                    merge,
                }),
                Some(output),
            )
        }
    }
}

/// `, e.g. `shortcut = conv(128, 1, stride = 2)``, when a 1×1 convolution with a whole stride
/// maps the input onto the body's output.
fn projection_hint(input: Shape, out: Shape) -> String {
    if let (Shape::Image { h, w, .. }, Shape::Image { c, h: oh, w: ow }) = (input, out) {
        let stride = h.div_ceil(oh.max(1));
        if stride >= 1 && (h - 1) / stride + 1 == oh && (w - 1) / stride + 1 == ow {
            let stride = if stride == 1 {
                String::new()
            } else {
                format!(", stride = {stride}")
            };
            return format!(", e.g. `shortcut = conv({c}, 1{stride})`");
        }
    }
    String::new()
}

/// The shape of the branches joined: channels added for images of one height and width,
/// features added for vectors.
fn concat_output(
    name: &Ident,
    outputs: &[(Option<Shape>, SpanRange)],
    errors: &mut Errors,
) -> Option<Shape> {
    let known: Vec<(usize, Shape, SpanRange)> = outputs
        .iter()
        .enumerate()
        .filter_map(|(i, (s, span))| s.map(|s| (i + 1, s, *span)))
        .collect();
    let (_, first, _) = *known.first()?;
    let mut ok = known.len() == outputs.len();
    let mut total = 0usize;
    for &(index, shape, span) in &known {
        match (first, shape) {
            (Shape::Image { h, w, .. }, Shape::Image { c, h: bh, w: bw }) => {
                if (h, w) != (bh, bw) {
                    errors.push(span.error(format!(
                        "{name}: branch {index} gives {} but branch 1 gives {}; branches are joined along channels and must agree on height and width ({bh}×{bw} ≠ {h}×{w})",
                        shape.describe(),
                        first.describe()
                    )));
                    ok = false;
                }
                total = total.saturating_add(c);
            }
            (Shape::Vector(_), Shape::Vector(f)) => total = total.saturating_add(f),
            (Shape::Sequence { steps, .. }, Shape::Sequence { steps: s, features }) => {
                if steps != s {
                    errors.push(span.error(format!(
                        "{name}: branch {index} gives {} but branch 1 gives {}; sequences are joined along features and must have the same length",
                        shape.describe(),
                        first.describe()
                    )));
                    ok = false;
                }
                total = total.saturating_add(features);
            }
            _ => {
                errors.push(span.error(format!(
                    "{name}: branch {index} gives {} but branch 1 gives {}; branches join images with images, vectors with vectors or sequences with sequences",
                    shape.describe(),
                    first.describe()
                )));
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    Some(match first {
        Shape::Image { h, w, .. } => Shape::Image { c: total, h, w },
        Shape::Vector(_) => Shape::Vector(total),
        Shape::Sequence { steps, .. } => Shape::Sequence {
            steps,
            features: total,
        },
    })
}

fn merge_layer(
    name: Ident,
    kind: &str,
    text: &str,
    span: SpanRange,
    op: Op,
    output: Shape,
) -> InferredLayer {
    InferredLayer {
        layer: Layer {
            name: None,
            kind: Ident::new(kind, span.start),
            args: Vec::new(),
            span,
            text: text.to_string(),
        },
        name,
        op,
        output,
    }
}

struct LayerContext<'a> {
    layer: &'a Layer,
    name: String,
    errors: &'a mut Errors,
}

impl LayerContext<'_> {
    fn error(&mut self, range: SpanRange, message: impl std::fmt::Display) {
        let error = range.error(format!("{}: {}", self.name, message));
        self.errors.push(error);
    }

    fn error_at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.error(SpanRange::single(span), message);
    }
}

fn infer_layer(ctx: &mut LayerContext, input: Option<Shape>, mode: FitMode) -> Option<(Op, Shape)> {
    let kind = ctx.layer.kind.to_string();
    match kind.as_str() {
        "linear" => infer_linear(ctx, input),
        "conv" => infer_conv(ctx, input, mode, Weights::Shared),
        "locally_connected" => infer_conv(ctx, input, mode, Weights::PerPosition),
        "conv_transpose" => infer_conv_transpose(ctx, input),
        "maxpool" | "avgpool" => infer_pool(ctx, input, mode, kind == "maxpool"),
        "flatten" => {
            bind(ctx, &[&[]], &[]);
            let shape = input?;
            if let Shape::Sequence { steps: None, .. } = shape {
                ctx.error(
                    ctx.layer.span,
                    format!(
                        "cannot flatten {}: its length is known only at run time (declare it, e.g. `[28, F]`, or take the last state with `output = last`)",
                        shape.described_kind()
                    ),
                );
                return None;
            }
            let elements = shape.elements()?;
            Some((Op::Flatten, Shape::Vector(elements)))
        }
        "reshape" => infer_reshape(ctx, input),
        "batchnorm" => {
            bind(ctx, &[&[]], &[]);
            let shape = input?;
            let op = match shape {
                Shape::Image { c, .. } => Op::BatchNorm {
                    features: c,
                    image: true,
                },
                Shape::Vector(f) => Op::BatchNorm {
                    features: f,
                    image: false,
                },
                Shape::Sequence { .. } => {
                    ctx.error(
                        ctx.layer.span,
                        format!(
                            "`batchnorm` normalises a vector or an image, not {}",
                            shape.described_kind()
                        ),
                    );
                    return None;
                }
            };
            Some((op, shape))
        }
        "global_avgpool" => {
            bind(ctx, &[&[]], &[]);
            let (c, _, _) = image_input(ctx, input, None);
            Some((Op::GlobalAvgPool, Shape::Vector(c?)))
        }
        "residual" | "concat" => {
            let example = if kind == "residual" {
                "residual(conv(64, 3, pad = 1) -> relu)"
            } else {
                "concat(conv(64, 1), conv(32, 3, pad = 1))"
            };
            let span = ctx.layer.span;
            ctx.error(
                span,
                format!("`{kind}` takes its branches in parentheses, e.g. `{example}`"),
            );
            None
        }
        "dropout" => infer_dropout(ctx, input),
        "leaky_relu" => infer_leaky_relu(ctx, input),
        "rows" | "columns" => infer_rows_or_columns(ctx, input, kind == "rows"),
        _ if Cell::of_kind(&kind).is_some() => {
            let cell = Cell::of_kind(&kind)?;
            infer_recurrent(ctx, input, cell)
        }
        "lrn" => infer_lrn(ctx, input),
        "relu" | "sigmoid" | "tanh" | "softmax" | "log_softmax" => {
            bind(ctx, &[&[]], &[]);
            let op = match kind.as_str() {
                "relu" => Op::Relu,
                "sigmoid" => Op::Sigmoid,
                "tanh" => Op::Tanh,
                "softmax" => Op::Softmax,
                _ => Op::LogSoftmax,
            };
            Some((op, input?))
        }
        _ => {
            let suggestion = match closest_kind(&kind) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => String::new(),
            };
            let span = ctx.layer.kind.span();
            ctx.errors.push(syn::Error::new(
                span,
                format!(
                    "unknown layer `{kind}`; expected one of: {}{suggestion}",
                    crate::ast::LAYER_KINDS.join(", ")
                ),
            ));
            None
        }
    }
}

/// The arguments of a layer, bound to parameter names.
struct Bound<'a> {
    values: Vec<(&'static str, &'a Arg)>,
}

impl<'a> Bound<'a> {
    fn get(&self, name: &str) -> Option<&'a Arg> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }
}

/// Binds positional arguments to the first matching signature in `positional` (chosen by
/// count), and named arguments to `named`. Reports too many arguments and unknown names.
fn bind<'a>(
    ctx: &mut LayerContext<'a>,
    positional: &[&[&'static str]],
    named: &[&'static str],
) -> Bound<'a> {
    let layer = ctx.layer;
    let kind = layer.kind.to_string();
    let given: Vec<&Arg> = layer.args.iter().filter(|a| a.name.is_none()).collect();
    let mut values = Vec::new();
    let signature = positional.iter().find(|s| s.len() == given.len());
    match signature {
        Some(names) => values.extend(names.iter().copied().zip(given.iter().copied())),
        None if positional.iter().all(|s| s.is_empty()) => {
            ctx.error(given[0].span, format!("`{kind}` takes no arguments"));
        }
        None => {
            let forms: Vec<String> = positional
                .iter()
                .map(|s| format!("{kind}({})", s.join(", ")))
                .collect();
            let range = given.first().map_or(layer.span, |a| a.span);
            ctx.error(
                range,
                format!(
                    "`{kind}` takes {}, found {} positional argument(s)",
                    forms.join(" or "),
                    given.len()
                ),
            );
        }
    }
    for arg in layer.args.iter().filter(|a| a.name.is_some()) {
        let name = arg.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        match named.iter().find(|n| **n == name) {
            Some(n) if values.iter().any(|(v, _)| v == n) => {
                ctx.error(arg.span, format!("`{name}` is given twice"));
            }
            Some(n) => values.push((n, arg)),
            None if named.is_empty() => {
                ctx.error(arg.span, format!("`{kind}` takes no option `{name}`"));
            }
            None => ctx.error(
                arg.span,
                format!(
                    "unknown option `{name}` for `{kind}`; expected one of: {}",
                    named.join(", ")
                ),
            ),
        }
    }
    Bound { values }
}

fn int(ctx: &mut LayerContext, arg: &Arg, what: &str) -> Option<Number> {
    match &arg.value {
        ArgValue::Int(n) => Some(*n),
        other => {
            ctx.error(
                arg.span,
                format!("{what} must be a whole number, found {}", other.describe()),
            );
            None
        }
    }
}

/// A size given as `n` (both axes) or `(h, w)`.
fn pair(ctx: &mut LayerContext, arg: &Arg, what: &str) -> Option<[Number; 2]> {
    match &arg.value {
        ArgValue::Int(n) => Some([*n, *n]),
        ArgValue::Pair(h, w, _) => Some([*h, *w]),
        other => {
            ctx.error(
                arg.span,
                format!(
                    "{what} must be a whole number or a pair `(height, width)`, found {}",
                    other.describe()
                ),
            );
            None
        }
    }
}

fn positive(ctx: &mut LayerContext, n: Number, what: &str) -> Option<usize> {
    if n.value == 0 {
        ctx.error_at(n.span, format!("{what} is 0; it must be at least 1"));
        None
    } else {
        Some(n.value)
    }
}

fn infer_linear(ctx: &mut LayerContext, input: Option<Shape>) -> Option<(Op, Shape)> {
    let input_shape = input;
    let args = bind(ctx, &[&["out"], &["in", "out"]], &[]);
    let output = args.get("out").and_then(|a| int(ctx, a, "the output size"));
    let output = output.and_then(|n| positive(ctx, n, "the output size"));
    let stated_input = args.get("in").and_then(|a| int(ctx, a, "the input size"));
    let inferred = match input {
        Some(Shape::Vector(f)) | Some(Shape::Sequence { features: f, .. }) => Some(f),
        Some(image @ Shape::Image { .. }) => {
            let flat = image.elements().unwrap_or(0);
            ctx.error(
                ctx.layer.span,
                format!(
                    "`linear` needs a vector but receives the image {}; add `flatten` before it (giving [{flat}])",
                    image.describe()
                ),
            );
            None
        }
        None => None,
    };
    if let (Some(stated), Some(inferred)) = (stated_input, inferred) {
        if stated.value != inferred {
            ctx.error_at(
                stated.span,
                format!(
                    "states input size {} but the previous layer gives {inferred}",
                    stated.value
                ),
            );
        }
    }
    let output = output?;
    // The input size is needed for the weights; the stated one recovers it after an error. When
    // neither is known (only possible after an error, so nothing is expanded) the output shape
    // is still known, and later layers are checked against it.
    let input = inferred
        .or(stated_input.map(|n| n.value).filter(|v| *v > 0))
        .unwrap_or(0);
    if input
        .checked_mul(output)
        .and_then(|p| p.checked_add(output))
        .is_none()
    {
        ctx.error(ctx.layer.span, "has more parameters than fit in a usize");
        return None;
    }
    // On a sequence the layer is applied at every step (PyTorch's `nn.Linear` on `[B, T, F]`).
    let shape = match input_shape {
        Some(Shape::Sequence { steps, .. }) => Shape::Sequence {
            steps,
            features: output,
        },
        _ => Shape::Vector(output),
    };
    Some((Op::Linear { input, output }, shape))
}

/// Whether a convolution-shaped layer shares its filters across positions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Weights {
    /// `conv`: one filter bank slides over the image.
    Shared,
    /// `locally_connected`: one filter bank per output position.
    PerPosition,
}

fn infer_conv(
    ctx: &mut LayerContext,
    input: Option<Shape>,
    mode: FitMode,
    weights: Weights,
) -> Option<(Op, Shape)> {
    let options: &[&'static str] = match weights {
        Weights::Shared => &["stride", "pad", "bias", "groups", "dilation"],
        Weights::PerPosition => &["stride", "pad"],
    };
    let args = bind(
        ctx,
        &[&["out", "kernel"], &["in", "out", "kernel"]],
        options,
    );
    let bias = match args.get("bias") {
        None => true,
        Some(Arg {
            value: ArgValue::Bool(b, _),
            ..
        }) => *b,
        Some(arg) => {
            ctx.error(
                arg.span,
                format!(
                    "bias must be `true` or `false`, found {}",
                    arg.value.describe()
                ),
            );
            true
        }
    };
    let groups = match args.get("groups") {
        None => Some(one()),
        Some(a) => int(ctx, a, "the number of groups")
            .filter(|n| positive(ctx, *n, "the number of groups").is_some()),
    };
    let output_channels = args
        .get("out")
        .and_then(|a| int(ctx, a, "the number of output channels"))
        .and_then(|n| positive(ctx, n, "the number of output channels"));
    let stated_input = args
        .get("in")
        .and_then(|a| int(ctx, a, "the number of input channels"));
    let kernel = args
        .get("kernel")
        .and_then(|a| pair(ctx, a, "the kernel size"));
    let stride = match args.get("stride") {
        Some(a) => pair(ctx, a, "the stride"),
        None => Some([one(), one()]),
    };
    let dilation = match args.get("dilation") {
        Some(a) => pair(ctx, a, "the dilation").filter(|d| {
            let ok = d
                .iter()
                .all(|n| positive(ctx, *n, "the dilation").is_some());
            if ok && d.iter().any(|n| n.value > 1) {
                let unsupported = match (groups.map(|g| g.value), bias) {
                    (Some(g), _) if g > 1 => Some("groups"),
                    (_, false) => Some("`bias = false`"),
                    _ => None,
                };
                if let Some(what) = unsupported {
                    ctx.error(a.span, format!("dilation with {what} is not supported yet"));
                    return false;
                }
            }
            ok
        }),
        None => Some([one(), one()]),
    };
    let same_padding = matches!(
        args.get("pad").map(|a| &a.value),
        Some(ArgValue::Word(w)) if w == "same"
    );
    let padding = match args.get("pad") {
        Some(Arg {
            value: ArgValue::Word(w),
            span,
            ..
        }) if w != "same" => {
            ctx.error(
                *span,
                format!("padding `{w}` is not known: use a number, a pair `(h, w)`, or `same`"),
            );
            None
        }
        Some(a) if !same_padding => pair(ctx, a, "the padding"),
        _ => Some([zero(), zero()]),
    };

    let (c, h, w) = image_input(ctx, input, stated_input);
    if let (Some(groups), Some(c), Some(out)) = (groups, c, output_channels) {
        check_groups(ctx, groups, c, out, bias);
    }
    let dilation = dilation?;
    // A dilated filter spans d·(k − 1) + 1 cells: the window arithmetic below uses that extent.
    let kernel = kernel?;
    let dilated_kernel = {
        let mut extent = kernel;
        for axis in 0..2 {
            let (k, d) = (kernel[axis].value, dilation[axis].value);
            match k
                .checked_sub(1)
                .and_then(|k| k.checked_mul(d))
                .and_then(|e| e.checked_add(1))
            {
                Some(value) => extent[axis].value = value,
                None => {
                    ctx.error(ctx.layer.span, "is too large: its sizes overflow a usize");
                    return None;
                }
            }
        }
        extent
    };
    let stride = stride?;
    let padding = if same_padding {
        let mut p = [zero(); 2];
        let pad_span = args.get("pad").map_or(ctx.layer.span, |a| a.span);
        for axis in 0..2 {
            match arith::same_padding(dilated_kernel[axis].value, stride[axis].value) {
                Ok(v) => {
                    p[axis] = Number {
                        value: v,
                        span: pad_span.start,
                    }
                }
                Err(message) => {
                    ctx.error(pad_span, message);
                    return None;
                }
            }
        }
        p
    } else {
        padding?
    };
    let output_channels = output_channels?;
    let groups = groups?.value;
    // A dilated kernel's errors show how its extent arises, e.g. `4·(3 − 1) + 1 = 9`.
    let extents = [0, 1].map(|axis| {
        let (k, d) = (kernel[axis].value, dilation[axis].value);
        (d > 1).then(|| format!("{d}·({k} − 1) + 1"))
    });
    let (out_h, out_w) = window_axes(
        ctx,
        [h, w],
        dilated_kernel,
        stride,
        padding,
        mode,
        "kernel",
        &extents,
    )?;
    let dilation = [dilation[0].value, dilation[1].value];
    let input_channels = c.or(stated_input.map(|n| n.value).filter(|v| *v > 0))?;
    let [kernel, stride, padding] = [kernel, stride, padding].map(|p| [p[0].value, p[1].value]);
    let op = match weights {
        Weights::Shared => Op::Conv {
            input_channels,
            output_channels,
            kernel,
            stride,
            padding,
            bias,
            groups,
            dilation,
        },
        Weights::PerPosition => Op::LocallyConnected {
            input_channels,
            output_channels,
            kernel,
            stride,
            padding,
            output: [out_h, out_w],
        },
    };
    // Overflow-checked copy of `Op::parameters`, which may then multiply freely.
    let window = input_channels
        .checked_mul(kernel[0])
        .and_then(|p| p.checked_mul(kernel[1]));
    let params = match weights {
        Weights::Shared => window
            .and_then(|p| p.checked_mul(output_channels))
            .and_then(|p| p.checked_add(output_channels)),
        Weights::PerPosition => window
            .and_then(|p| p.checked_add(1))
            .and_then(|p| p.checked_mul(output_channels))
            .and_then(|p| p.checked_mul(out_h))
            .and_then(|p| p.checked_mul(out_w)),
    };
    let out = Shape::Image {
        c: output_channels,
        h: out_h,
        w: out_w,
    };
    if params.is_none() || out.elements().is_none() {
        ctx.error(ctx.layer.span, "is too large: its sizes overflow a usize");
        return None;
    }
    Some((op, out))
}

/// `groups = G` splits the input channels into G groups, each convolved with its own
/// `out / G` filters: G must divide both channel counts.
fn check_groups(ctx: &mut LayerContext, groups: Number, input: usize, output: usize, bias: bool) {
    if groups.value == 1 {
        return;
    }
    for (count, what) in [(input, "input"), (output, "output")] {
        if count % groups.value != 0 {
            ctx.error_at(
                groups.span,
                format!(
                    "groups = {g} must divide the {count} {what} channels: {count}/{g} = {:.2} is not a whole number",
                    count as f64 / groups.value as f64,
                    g = groups.value,
                ),
            );
        }
    }
    if !bias {
        ctx.error_at(
            groups.span,
            "a grouped convolution without a bias is not supported yet: drop `bias = false` or `groups`",
        );
    }
}

/// Channels, height and width of the image a layer receives (each `None` when unknown after an
/// earlier error), reporting a vector input and a stated channel count that contradicts it.
fn image_input(
    ctx: &mut LayerContext,
    input: Option<Shape>,
    stated_channels: Option<Number>,
) -> (Option<usize>, Option<usize>, Option<usize>) {
    let (c, h, w) = match input {
        Some(Shape::Image { c, h, w }) => (Some(c), Some(h), Some(w)),
        Some(sequence @ Shape::Sequence { .. }) => {
            let kind = ctx.layer.kind.to_string();
            ctx.error(
                ctx.layer.span,
                format!(
                    "`{kind}` needs an image [C, H, W] but receives {}",
                    sequence.described_kind()
                ),
            );
            (None, None, None)
        }
        Some(vector @ Shape::Vector(_)) => {
            let kind = ctx.layer.kind.to_string();
            ctx.error(
                ctx.layer.span,
                format!(
                    "`{kind}` needs an image [C, H, W] but receives the vector {}; it cannot follow `flatten` or `linear` (use `reshape(C, H, W)` first)",
                    vector.describe()
                ),
            );
            (None, None, None)
        }
        None => (None, None, None),
    };
    if let (Some(stated), Some(c)) = (stated_channels, c) {
        if stated.value != c {
            ctx.error_at(
                stated.span,
                format!(
                    "states {} input channels but the previous layer gives {c}",
                    stated.value
                ),
            );
        }
    }
    (c, h, w)
}

/// A transposed convolution (PyTorch's `ConvTranspose2d`): output `(w − 1)·s − 2p + f + q`.
/// Every output size is whole, so exact-fit mode has nothing to check here.
fn infer_conv_transpose(ctx: &mut LayerContext, input: Option<Shape>) -> Option<(Op, Shape)> {
    let args = bind(
        ctx,
        &[&["out", "kernel"], &["in", "out", "kernel"]],
        &["stride", "pad", "output_pad"],
    );
    let output_channels = args
        .get("out")
        .and_then(|a| int(ctx, a, "the number of output channels"))
        .and_then(|n| positive(ctx, n, "the number of output channels"));
    let stated_input = args
        .get("in")
        .and_then(|a| int(ctx, a, "the number of input channels"));
    let kernel = args
        .get("kernel")
        .and_then(|a| pair(ctx, a, "the kernel size"));
    let mut option = |name: &str, default: usize, what: &str| match args.get(name) {
        Some(a) => pair(ctx, a, what),
        None => Some(
            [Number {
                value: default,
                span: Span::call_site(),
            }; 2],
        ),
    };
    let stride = option("stride", 1, "the stride");
    let padding = option("pad", 0, "the padding");
    let output_padding = option("output_pad", 0, "the output padding");
    let (c, h, w) = image_input(ctx, input, stated_input);
    let (kernel, stride, padding, output_padding) = (kernel?, stride?, padding?, output_padding?);
    let output_channels = output_channels?;
    let mut out = [0usize; 2];
    let mut reported: Vec<String> = Vec::new();
    for axis in 0..2 {
        let Some(size) = [h, w][axis] else { continue };
        let geometry = arith::TransposedAxis {
            input: size,
            kernel: kernel[axis].value,
            stride: stride[axis].value,
            padding: padding[axis].value,
            output_padding: output_padding[axis].value,
        };
        match arith::transposed_output(&geometry) {
            Ok(v) => out[axis] = v,
            Err(error) => {
                let span = match error {
                    arith::TransposedAxisError::ZeroKernel => kernel[axis].span,
                    arith::TransposedAxisError::ZeroStride => stride[axis].span,
                    arith::TransposedAxisError::OutputPaddingNotBelowStride(_) => {
                        output_padding[axis].span
                    }
                    _ => padding[axis].span,
                };
                let both_same = h == w
                    && kernel[0].value == kernel[1].value
                    && stride[0].value == stride[1].value
                    && padding[0].value == padding[1].value
                    && output_padding[0].value == output_padding[1].value;
                let axis_name = match (both_same, axis) {
                    (true, _) => "height and width",
                    (false, 0) => "height",
                    (false, _) => "width",
                };
                let message = match error {
                    arith::TransposedAxisError::NotPositive(_)
                    | arith::TransposedAxisError::Overflow(_) => {
                        format!("output {axis_name} {}", error.message())
                    }
                    _ => error.message(),
                };
                if !reported.contains(&message) {
                    ctx.error_at(span, &message);
                    reported.push(message);
                }
            }
        }
    }
    if !reported.is_empty() {
        return None;
    }
    let input_channels = c.or(stated_input.map(|n| n.value).filter(|v| *v > 0))?;
    let op = Op::ConvTranspose {
        input_channels,
        output_channels,
        kernel: [kernel[0].value, kernel[1].value],
        stride: [stride[0].value, stride[1].value],
        padding: [padding[0].value, padding[1].value],
        output_padding: [output_padding[0].value, output_padding[1].value],
    };
    let shape = Shape::Image {
        c: output_channels,
        h: out[0],
        w: out[1],
    };
    let params = output_channels
        .checked_mul(input_channels)
        .and_then(|p| p.checked_mul(kernel[0].value))
        .and_then(|p| p.checked_mul(kernel[1].value))
        .and_then(|p| p.checked_add(output_channels));
    if params.is_none() || shape.elements().is_none() {
        ctx.error(ctx.layer.span, "is too large: its sizes overflow a usize");
        return None;
    }
    Some((op, shape))
}

fn infer_pool(
    ctx: &mut LayerContext,
    input: Option<Shape>,
    mode: FitMode,
    max: bool,
) -> Option<(Op, Shape)> {
    let args = bind(
        ctx,
        &[&["window"], &["window", "stride"]],
        &["stride", "pad"],
    );
    let window = args.get("window").and_then(|a| pair(ctx, a, "the window"));
    let stride = match args.get("stride") {
        Some(a) => pair(ctx, a, "the stride"),
        // PyTorch's default stride is the window.
        None => window,
    };
    let padding = match args.get("pad") {
        Some(a) => pair(ctx, a, "the padding"),
        None => Some([zero(), zero()]),
    };
    let (c, h, w) = image_input(ctx, input, None);
    let window = window?;
    let stride = stride?;
    let padding = padding?;
    // PyTorch's rule: a window must always cover some of the input, so padding is at most
    // half the window.
    let mut padding_ok = true;
    for axis in 0..2 {
        if padding[axis].value > window[axis].value / 2 {
            let message = format!(
                "padding {} is more than half the window {}; pooling pads at most ⌊{}/2⌋ = {} so that every window covers some of the input",
                padding[axis].value,
                window[axis].value,
                window[axis].value,
                window[axis].value / 2
            );
            ctx.error_at(padding[axis].span, message);
            padding_ok = false;
            break;
        }
    }
    let (out_h, out_w) = window_axes(
        ctx,
        [h, w],
        window,
        stride,
        padding,
        mode,
        "window",
        &[None, None],
    )?;
    if !padding_ok {
        return None;
    }
    let window = [window[0].value, window[1].value];
    let stride = [stride[0].value, stride[1].value];
    let padding = [padding[0].value, padding[1].value];
    let padded = [h? + 2 * padding[0], w? + 2 * padding[1]];
    let op = if max {
        Op::MaxPool {
            window,
            stride,
            padding,
            padded,
        }
    } else {
        Op::AvgPool {
            window,
            stride,
            padding,
            padded,
        }
    };
    Some((
        op,
        Shape::Image {
            c: c?,
            h: out_h,
            w: out_w,
        },
    ))
}

/// Output height and width of a sliding window, with one error per failing axis (one for both
/// when they fail the same way).
// Each argument is one part of the window's arithmetic; bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
fn window_axes(
    ctx: &mut LayerContext,
    input: [Option<usize>; 2],
    kernel: [Number; 2],
    stride: [Number; 2],
    padding: [Number; 2],
    mode: FitMode,
    window_word: &str,
    dilated_extents: &[Option<String>; 2],
) -> Option<(usize, usize)> {
    let mut out = [None, None];
    let mut reported: Vec<String> = Vec::new();
    for axis in 0..2 {
        let axis_name = if axis == 0 { "height" } else { "width" };
        let both_same = input[0] == input[1]
            && kernel[0].value == kernel[1].value
            && stride[0].value == stride[1].value
            && padding[0].value == padding[1].value;
        let axis_label = if both_same {
            "height and width".to_string()
        } else {
            axis_name.to_string()
        };
        if stride[axis].value == 0 {
            let message =
                format!("stride is 0; it must be at least 1 (the {window_word} has to move)");
            if !reported.contains(&message) {
                ctx.error_at(stride[axis].span, &message);
                reported.push(message);
            }
            continue;
        }
        if kernel[axis].value == 0 {
            let message = format!("{window_word} size is 0; it must be at least 1");
            if !reported.contains(&message) {
                ctx.error_at(kernel[axis].span, &message);
                reported.push(message);
            }
            continue;
        }
        let Some(size) = input[axis] else { continue };
        let geometry = WindowAxis {
            input: size,
            kernel: kernel[axis].value,
            stride: stride[axis].value,
            padding: padding[axis].value,
        };
        match arith::window_output(&geometry, mode) {
            Ok(v) => out[axis] = Some(v),
            Err(error) => {
                let span = match error {
                    arith::AxisError::Inexact(_) => stride[axis].span,
                    _ => kernel[axis].span,
                };
                let mut message = describe_axis_error(&error, &geometry, &axis_label, window_word);
                if let Some(extent) = &dilated_extents[axis] {
                    let plain = format!("kernel {} ", geometry.kernel);
                    if message.starts_with(&plain) {
                        let dilated = format!("dilated kernel {extent} = {} ", geometry.kernel);
                        message = message.replacen(&plain, &dilated, 1);
                    } else {
                        // A suggested kernel size is an extent the dilated kernel must span.
                        if let Some(at) = message.find("to fit exactly, use ") {
                            let fixes =
                                message[at..].replace("kernel ", "a dilated kernel spanning ");
                            message.replace_range(at.., &fixes);
                        }
                        message = format!(
                            "{message} (the dilated kernel spans {extent} = {})",
                            geometry.kernel
                        );
                    }
                }
                if !reported.contains(&message) {
                    ctx.error_at(span, &message);
                    reported.push(message);
                }
                // An inexact fit still has PyTorch's floor size: later layers are checked
                // against it, so their own mistakes are reported in the same pass.
                if let arith::AxisError::Inexact(_) = error {
                    out[axis] = arith::window_output(&geometry, FitMode::Floor).ok();
                }
            }
        }
    }
    Some((out[0]?, out[1]?))
}

fn describe_axis_error(
    error: &arith::AxisError,
    geometry: &WindowAxis,
    axis_label: &str,
    window_word: &str,
) -> String {
    let kind = if window_word == "kernel" {
        arith::WindowKind::Conv
    } else {
        arith::WindowKind::Pool
    };
    let _ = geometry;
    match error {
        arith::AxisError::Inexact(_) => format!("output {axis_label} {}", error.message(kind)),
        _ => error.message(kind),
    }
}

fn infer_reshape(ctx: &mut LayerContext, input: Option<Shape>) -> Option<(Op, Shape)> {
    let layer = ctx.layer;
    let mut dims = Vec::new();
    for arg in &layer.args {
        if arg.name.is_some() {
            ctx.error(
                arg.span,
                "`reshape` takes only the new dimensions, e.g. `reshape(1, 28, 28)`",
            );
            return None;
        }
        let dim = int(ctx, arg, "a dimension")?;
        dims.push(positive(ctx, dim, "a dimension")?);
    }
    let target = match dims.as_slice() {
        [f] => Shape::Vector(*f),
        [t, f] => Shape::Sequence {
            steps: Some(*t),
            features: *f,
        },
        [c, h, w] => Shape::Image {
            c: *c,
            h: *h,
            w: *w,
        },
        _ => {
            ctx.error(
                layer.span,
                format!(
                    "`reshape` gives a vector `reshape(F)`, a sequence `reshape(T, F)` or an image `reshape(C, H, W)`, found {} dimension(s)",
                    dims.len()
                ),
            );
            return None;
        }
    };
    let Some(target_elements) = target.elements() else {
        ctx.error(
            layer.span,
            "the new shape has more elements than fit in a usize",
        );
        return None;
    };
    let input = input?;
    if let Shape::Sequence { steps: None, .. } = input {
        ctx.error(
            layer.span,
            format!(
                "cannot reshape {}: its length is known only at run time",
                input.described_kind()
            ),
        );
        return None;
    }
    let input_elements = input.elements()?;
    if input_elements != target_elements {
        ctx.error(
            layer.span,
            format!(
                "cannot reshape {} ({input_elements} elements) into {} ({target_elements} elements)",
                input.describe(),
                target.describe()
            ),
        );
        return None;
    }
    Some((Op::Reshape, target))
}

fn infer_dropout(ctx: &mut LayerContext, input: Option<Shape>) -> Option<(Op, Shape)> {
    let args = bind(ctx, &[&["p"]], &[]);
    let arg = args.get("p")?;
    let p = match arg.value {
        ArgValue::Float { value, .. } => value,
        ArgValue::Int(n) if n.value == 0 => 0.0,
        _ => {
            ctx.error(
                arg.span,
                "the dropout probability must be a number in [0, 1), e.g. `dropout(0.5)`",
            );
            return None;
        }
    };
    if !(0.0..1.0).contains(&p) {
        ctx.error(
            arg.span,
            format!(
                "dropout probability {p} is outside [0, 1): it is the chance of zeroing a unit"
            ),
        );
        return None;
    }
    Some((Op::Dropout(p), input?))
}

/// `leaky_relu(slope)`: the slope for negative inputs, a finite number (0.2 in most GANs);
/// PyTorch's default 0.01 when omitted.
fn infer_leaky_relu(ctx: &mut LayerContext, input: Option<Shape>) -> Option<(Op, Shape)> {
    let args = bind(ctx, &[&[], &["slope"]], &[]);
    let slope = match args.get("slope") {
        None => 0.01,
        Some(arg) => match arg.value {
            ArgValue::Float { value, .. } => value,
            ArgValue::Int(n) => n.value as f64,
            _ => {
                ctx.error(
                    arg.span,
                    "the leaky ReLU's slope must be a number, e.g. `leaky_relu(0.2)`",
                );
                return None;
            }
        },
    };
    Some((Op::LeakyRelu(slope), input?))
}

/// `lrn(size)` with options `alpha`, `beta`, `k` (PyTorch's defaults 1e-4, 0.75, 1).
fn infer_lrn(ctx: &mut LayerContext, input: Option<Shape>) -> Option<(Op, Shape)> {
    let args = bind(ctx, &[&["size"]], &["alpha", "beta", "k"]);
    let size = args
        .get("size")
        .and_then(|a| int(ctx, a, "the window size"))
        .and_then(|n| positive(ctx, n, "the window size"));
    let mut number = |name: &str, default: f64| match args.get(name) {
        None => Some(default),
        Some(arg) => match arg.value {
            ArgValue::Float { value, .. } => Some(value),
            ArgValue::Int(n) => Some(n.value as f64),
            _ => {
                ctx.error(
                    arg.span,
                    format!("`{name}` must be a number, e.g. `{name} = 0.75`"),
                );
                None
            }
        },
    };
    let (alpha, beta, k) = (
        number("alpha", 1e-4),
        number("beta", 0.75),
        number("k", 1.0),
    );
    let (c, h, w) = image_input(ctx, input, None);
    let size = size?;
    if size % 2 == 0 {
        let span = args.get("size").map_or(ctx.layer.span, |a| a.span);
        ctx.error(
            span,
            format!("window size {size} is even; use an odd size (the window is centred on each channel)"),
        );
        return None;
    }
    let (c, h, w) = (c?, h?, w?);
    let op = Op::LocalResponseNorm {
        size,
        alpha: alpha?,
        beta: beta?,
        k: k?,
        channels: c,
        plane: h.checked_mul(w)?,
    };
    Some((op, Shape::Image { c, h, w }))
}

fn one() -> Number {
    Number {
        value: 1,
        span: Span::call_site(),
    }
}

fn zero() -> Number {
    Number {
        value: 0,
        span: Span::call_site(),
    }
}

/// `rows` and `columns`: an image read as a sequence, for a recurrent layer (a CNN feeding an
/// LSTM, or MNIST read row by row).
fn infer_rows_or_columns(
    ctx: &mut LayerContext,
    input: Option<Shape>,
    rows: bool,
) -> Option<(Op, Shape)> {
    bind(ctx, &[&[]], &[]);
    let (c, h, w) = image_input(ctx, input, None);
    let (c, h, w) = (c?, h?, w?);
    let (steps, per_step, op) = if rows {
        (h, w, Op::Rows)
    } else {
        (w, h, Op::Columns)
    };
    let Some(features) = c.checked_mul(per_step) else {
        ctx.error(ctx.layer.span, "has more features than fit in a usize");
        return None;
    };
    let shape = Shape::Sequence {
        steps: Some(steps),
        features,
    };
    Some((op, shape))
}

/// `lstm(H)`, `gru(H)`, …: a recurrent layer over a sequence, with `output = sequence` (every
/// step, the default, as PyTorch's layers return) or `output = last`, and `bidirectional`.
fn infer_recurrent(
    ctx: &mut LayerContext,
    input: Option<Shape>,
    cell: Cell,
) -> Option<(Op, Shape)> {
    let kind = ctx.layer.kind.to_string();
    let args = bind(ctx, &[&["hidden"]], &["output", "bidirectional"]);
    let hidden = args
        .get("hidden")
        .and_then(|a| int(ctx, a, "the hidden size"))
        .and_then(|n| positive(ctx, n, "the hidden size"));
    let last = match args.get("output") {
        None => Some(false),
        Some(arg) => match &arg.value {
            ArgValue::Word(word) if word == "sequence" => Some(false),
            ArgValue::Word(word) if word == "last" => Some(true),
            other => {
                let found = match other {
                    ArgValue::Word(word) => format!("`{word}`"),
                    other => other.describe().to_string(),
                };
                ctx.error(
                    arg.span,
                    format!("`output` is `sequence` (every step, [T, H]) or `last` (the last state, [H]), found {found}"),
                );
                None
            }
        },
    };
    let bidirectional = match args.get("bidirectional") {
        None => Some(false),
        Some(arg) => match arg.value {
            ArgValue::Bool(b, _) => Some(b),
            ref other => {
                ctx.error(
                    arg.span,
                    format!(
                        "`bidirectional` is `true` or `false`, found {}",
                        other.describe()
                    ),
                );
                None
            }
        },
    };
    let (steps, features) = match input? {
        Shape::Sequence { steps, features } => (steps, features),
        other => {
            let hint = match other {
                Shape::Image { c, h, w } => format!(
                    "; read it as a sequence with `rows` (giving [{h}, {}]) or `columns` (giving [{w}, {}]) first",
                    c.saturating_mul(w),
                    c.saturating_mul(h)
                ),
                _ => "; cut a vector into steps with `reshape(T, F)` first".to_string(),
            };
            ctx.error(
                ctx.layer.span,
                format!(
                    "`{kind}` needs a sequence [T, F] but receives {}{hint}",
                    other.described_kind()
                ),
            );
            return None;
        }
    };
    let (hidden, last, bidirectional) = (hidden?, last?, bidirectional?);
    let Some(width) = hidden.checked_mul(if bidirectional { 2 } else { 1 }) else {
        ctx.error(ctx.layer.span, "has more features than fit in a usize");
        return None;
    };
    let parameters_fit = hidden
        .checked_mul(hidden.saturating_add(features).saturating_add(3))
        .and_then(|p| p.checked_mul(8))
        .is_some();
    if !parameters_fit {
        ctx.error(ctx.layer.span, "has more parameters than fit in a usize");
        return None;
    }
    let output = if last {
        Shape::Vector(width)
    } else {
        Shape::Sequence {
            steps,
            features: width,
        }
    };
    let op = Op::Recurrent {
        cell,
        input: features,
        hidden,
        last,
        bidirectional,
    };
    Some((op, output))
}
