//! Stage 4: generate the network type from the inferred shapes.
//!
//! Everything is named by absolute path (`::typednet::…`, `::core::…`) so that user code that
//! shadows `Result`, `Ok`, `Tensor` or `Module` cannot change what the generated code means;
//! statements of `forward` carry the span of the layer they come from, so a leftover type error
//! lands on the DSL line.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use crate::ast::Header;
use crate::infer::{InferredLayer, InferredNetwork, Node, Op, Shape, RUN_TIME_STEPS};

/// Paths the generated code uses, all absolute.
pub struct Paths {
    pub dfdx: TokenStream,
    pub typednet: TokenStream,
    pub core: TokenStream,
}

impl Paths {
    pub fn new() -> Self {
        Paths {
            dfdx: quote!(::typednet::__private::dfdx),
            typednet: quote!(::typednet),
            core: quote!(::typednet::__private::core),
        }
    }
}

/// The struct header shared by a real and a fallback expansion.
pub fn struct_generics(paths: &Paths) -> TokenStream {
    let dfdx = &paths.dfdx;
    let core = &paths.core;
    quote!(<E: #dfdx::shapes::Dtype = #core::primitive::f32, D: #dfdx::tensor::Storage<E> = #dfdx::tensor::Cpu>)
}

/// The dfdx dimension types of `shape`: `Const<N>`, or `usize` for a run-time length.
fn dim_types(shape: Shape, dfdx: &TokenStream) -> Vec<TokenStream> {
    shape
        .dims()
        .into_iter()
        .map(|d| match d {
            RUN_TIME_STEPS => quote!(::typednet::__private::core::primitive::usize),
            d => quote!(#dfdx::shapes::Const<#d>),
        })
        .collect()
}

/// The dfdx shape type of a batch of `shape`, with the batch dimension `B`.
fn batch_shape_type(shape: Shape, dfdx: &TokenStream) -> TokenStream {
    let dims = dim_types(shape, dfdx);
    quote!((B, #(#dims,)*))
}

/// The dfdx shape type of one example.
fn single_shape_type(shape: Shape, dfdx: &TokenStream) -> TokenStream {
    let dims = dim_types(shape, dfdx);
    quote!((#(#dims,)*))
}

/// The value of the shape of one example, as dfdx's `reshape_like` takes it, with
/// `batch_prefix` before it (e.g. `Const::<1>`); a run-time length is read from `steps`.
fn shape_value(shape: Shape, batch_prefix: TokenStream, steps: &TokenStream) -> TokenStream {
    let dims = shape.dims().into_iter().map(|d| match d {
        RUN_TIME_STEPS => steps.clone(),
        d => quote!(::typednet::__private::dfdx::shapes::Const::<#d>),
    });
    quote!((#batch_prefix #(#dims,)*))
}

/// The shape marker (`Vector<784>` or `Image<1, 28, 28>`) used to check composition.
fn marker_type(shape: Shape, typednet: &TokenStream) -> TokenStream {
    match shape {
        Shape::Vector(f) => quote!(#typednet::network::Vector<#f>),
        Shape::Image { c, h, w } => quote!(#typednet::network::Image<#c, #h, #w>),
        Shape::Sequence {
            steps: Some(t),
            features,
        } => quote!(#typednet::network::Sequence<#t, #features>),
        Shape::Sequence {
            steps: None,
            features,
        } => quote!(#typednet::network::SequenceOfAnyLength<#features>),
    }
}

fn shape_slice(shape: Shape) -> TokenStream {
    let dims = shape.dims();
    quote!(&[#(#dims),*])
}

pub fn expand_network(header: &Header, net: &InferredNetwork) -> TokenStream {
    let paths = Paths::new();
    let Paths {
        dfdx,
        typednet,
        core,
    } = &paths;
    let name = &header.name;
    let vis = &header.vis;
    let docs = &header.docs;
    let other_attrs = &header.other_attrs;
    let generics = struct_generics(&paths);
    let name_string = name.to_string();

    let all_layers = net.layers();
    let param_layers: Vec<_> = all_layers
        .iter()
        .filter(|l| {
            matches!(
                l.op,
                Op::Linear { .. }
                    | Op::Conv { .. }
                    | Op::LocallyConnected { .. }
                    | Op::ConvTranspose { .. }
                    | Op::BatchNorm { .. }
                    | Op::Recurrent { .. }
            )
        })
        .collect();

    // Struct fields: one per layer with parameters.
    let fields = param_layers.iter().map(|l| {
        let field = &l.name;
        let doc = format!(
            "`{}`: output {}, {} parameters",
            l.layer.text,
            l.output.describe(),
            l.op.parameters()
        );
        let ty = param_type(&l.op, &paths);
        quote!(#[doc = #doc] pub #field: #ty)
    });
    let marker_field = if param_layers.is_empty() {
        quote!(#[doc(hidden)] pub __marker: #core::marker::PhantomData<(E, D)>,)
    } else {
        quote!()
    };
    let marker_init = if param_layers.is_empty() {
        quote!(__marker: #core::marker::PhantomData,)
    } else {
        quote!()
    };

    // TensorCollection: dfdx visits fields given as tuples of at most six, so nest them.
    let field_names: Vec<&Ident> = param_layers.iter().map(|l| &l.name).collect();
    let visits: Vec<TokenStream> = field_names
        .iter()
        .map(|f| {
            let label = f.to_string();
            quote!(Self::module(#label, |s| &s.#f, |s| &mut s.#f))
        })
        .collect();
    let patterns: Vec<TokenStream> = field_names.iter().map(|f| quote!(#f)).collect();
    let visit_tuple = nest(&visits);
    let pattern_tuple = nest(&patterns);

    let layer_infos = all_layers.iter().map(|l| {
        let label = l.name.to_string();
        let text = &l.layer.text;
        let shape = shape_slice(l.output);
        let params = l.op.parameters();
        quote!(#typednet::LayerInfo { name: #label, kind: #text, output_shape: #shape, parameters: #params })
    });
    let total_params: usize = all_layers.iter().map(|l| l.op.parameters()).sum();
    let input_slice = shape_slice(net.input);
    let output_slice = shape_slice(net.output());
    let input_marker = marker_type(net.input, typednet);
    let output_marker = marker_type(net.output(), typednet);

    let doc_table = shape_table_doc(&name_string, net);

    let batch_in = batch_shape_type(net.input, dfdx);
    let batch_out = batch_shape_type(net.output(), dfdx);
    let single_in = single_shape_type(net.input, dfdx);
    let single_out = single_shape_type(net.output(), dfdx);
    // One example as a batch of one, and back; a run-time sequence length is the example's own.
    let single_steps = quote!(__input_shape.0);
    let single_in_batched =
        shape_value(net.input, quote!(#dfdx::shapes::Const::<1>,), &single_steps);
    let single_out_value = shape_value(net.output(), quote!(), &quote!(__output_shape.1));

    // The batch forward, once with `&self`; networks with layers whose state training updates
    // (batch norm's running statistics) get it a second time with `&mut self`.
    // With `heads`, it also runs the `head`s and returns their outputs beside the network's.
    let heads: Vec<&InferredLayer> = net
        .nodes
        .iter()
        .filter_map(|node| match node {
            Node::Head { marker, .. } => Some(marker),
            _ => None,
        })
        .collect();
    let heads_type = {
        let types = heads.iter().map(|marker| tensor_type(marker, &paths));
        quote!((#(#types,)*))
    };
    let forward_fn =
        |vis: TokenStream, name: Ident, receiver: TokenStream, mutable: bool, with_heads: bool| {
            let steps = forward_nodes(&net.nodes, &paths, mutable, with_heads);
            let (output_type, output) = if with_heads {
                let names = heads.iter().map(|marker| head_variable(marker));
                (
                    quote!((#dfdx::tensor::Tensor<#batch_out, E, D, T>, #heads_type)),
                    quote!((x, (#(#names,)*))),
                )
            } else {
                (
                    quote!(#dfdx::tensor::Tensor<#batch_out, E, D, T>),
                    quote!(x),
                )
            };
            quote! {
                #[allow(clippy::type_complexity, unused_variables)]
                #vis fn #name<B: #dfdx::shapes::Dim, T: #dfdx::tensor::Tape<E, D>>(
                    #receiver,
                    x: #dfdx::tensor::Tensor<#batch_in, E, D, T>,
                ) -> #core::result::Result<#output_type, D::Err> {
                    #[allow(unused_imports)]
                    use #dfdx::tensor_ops::{ReshapeTo as _, TryMatMul as _, TryAdd as _};
                    #[allow(unused_imports)]
                    use #dfdx::tensor::{PutTape as _, SplitTape as _};
                    #[allow(unused_imports)]
                    use #dfdx::nn::Module as _;
                    let batch: B = #dfdx::shapes::HasShape::shape(&x).0;
                    #(#steps)*
                    #core::result::Result::Ok(#output)
                }
            }
        };
    let has_state = all_layers
        .iter()
        .any(|l| matches!(l.op, Op::BatchNorm { .. }));
    let forward_batch_fn = forward_fn(
        quote!(),
        format_ident!("__forward_batch"),
        quote!(&self),
        false,
        false,
    );
    let forward_mut_fn = if has_state {
        forward_fn(
            quote!(),
            format_ident!("__forward_batch_mut"),
            quote!(&mut self),
            true,
            false,
        )
    } else {
        quote!()
    };
    let forward_heads_fns = if heads.is_empty() {
        quote!()
    } else {
        let listed: Vec<String> = heads
            .iter()
            .map(|marker| format!("`{}` {}", marker.name, marker.output.describe()))
            .collect();
        let doc = format!(
            "Runs the network on a batch and returns its output with the outputs of its heads, in the order declared: ({}). [`forward`](Self::forward) skips the heads (PyTorch's eval mode); the heads' outputs carry tapes of their own, which merge into the output's when their losses are added to its loss.",
            listed.join(", ")
        );
        let with_heads = forward_fn(
            quote!(pub),
            format_ident!("try_forward_with_heads"),
            quote!(&self),
            false,
            true,
        );
        let with_heads_mut = if has_state {
            let doc_mut = "[`try_forward_with_heads`](Self::try_forward_with_heads) in training mode: batch normalisation uses and updates the batch statistics, as [`forward_mut`](Self::forward_mut) does.";
            let function = forward_fn(
                quote!(pub),
                format_ident!("try_forward_mut_with_heads"),
                quote!(&mut self),
                true,
                true,
            );
            quote!(#[doc = #doc_mut] #function)
        } else {
            quote!()
        };
        quote! {
            #[doc = #doc]
            #with_heads
            #with_heads_mut
        }
    };

    // A batch with every dimension a run-time `usize`, e.g. `(usize, usize)` for `[784]`.
    let dynamic_in = {
        let dims: Vec<TokenStream> = net
            .input
            .dims()
            .iter()
            .map(|_| quote!(#core::primitive::usize))
            .collect();
        quote!((#core::primitive::usize, #(#dims,)*))
    };
    let dynamic_realized = {
        let dims = dim_types(net.input, dfdx);
        quote!((#core::primitive::usize, #(#dims,)*))
    };
    let dynamic_out = {
        let dims = dim_types(net.output(), dfdx);
        quote!((#core::primitive::usize, #(#dims,)*))
    };

    let run_mut = |call: TokenStream| {
        if has_state {
            call
        } else {
            quote!()
        }
    };
    let run_mut_batch = run_mut(quote! {
        fn try_run_mut(self, net: &mut #name<E, D>) -> #core::result::Result<Self::Output, D::Err> {
            net.__forward_batch_mut(self)
        }
    });
    let run_mut_single = run_mut(quote! {
        fn try_run_mut(self, net: &mut #name<E, D>) -> #core::result::Result<Self::Output, D::Err> {
            use #dfdx::tensor_ops::ReshapeTo as _;
            let __input_shape = *#dfdx::shapes::HasShape::shape(&self);
            let batch = self.try_reshape_like(&#single_in_batched)?;
            let out = net.__forward_batch_mut(batch)?;
            let __output_shape = *#dfdx::shapes::HasShape::shape(&out);
            out.try_reshape_like(&#single_out_value)
        }
    });
    let run_mut_dynamic = run_mut(quote! {
        fn try_run_mut(self, net: &mut #name<E, D>) -> #core::result::Result<Self::Output, Self::Error> {
            let x = #typednet::network::try_realize_batch::<_, #dynamic_realized, E, D, T>(#name_string, #input_slice, self)?;
            net.__forward_batch_mut(x).map_err(#typednet::ForwardError::Device)
        }
    });
    // dfdx's `ModuleMut`: the training forward for networks with state; for the others, dfdx
    // derives it from `Module` (`NonMutableModule`).
    let module_mut = if has_state {
        quote! {
            impl<E: #typednet::Element, D: #typednet::Device<E>, X: #typednet::NetworkInput<#name<E, D>, Error = D::Err>>
                #dfdx::nn::ModuleMut<X> for #name<E, D>
            {
                type Output = X::Output;
                type Error = D::Err;
                fn try_forward_mut(&mut self, x: X) -> #core::result::Result<X::Output, D::Err> {
                    #typednet::NetworkInput::try_run_mut(x, self)
                }
            }
        }
    } else {
        quote! {
            impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #dfdx::nn::NonMutableModule for #name<E, D> {}
        }
    };

    quote! {
        #(#docs)*
        #[doc = #doc_table]
        #(#other_attrs)*
        #[derive(#core::fmt::Debug, #core::clone::Clone)]
        #vis struct #name #generics {
            #(#fields,)*
            #marker_field
        }

        const _: () = {
            use #dfdx::nn::modules::{ModuleVisitor as _, TensorCollection as _};

            const __LAYERS: &'static [#typednet::LayerInfo] = &[#(#layer_infos),*];

            /// Shapes and sizes of the network, known at compile time; the same values are on
            /// the [`Network`](::typednet::Network) trait for every dtype and device.
            impl #name<#core::primitive::f32, #dfdx::tensor::Cpu> {
                /// Name of the network.
                pub const NAME: &'static #core::primitive::str = #name_string;
                /// Shape of one input example.
                pub const INPUT_SHAPE: &'static [#core::primitive::usize] = #input_slice;
                /// Shape of one output example.
                pub const OUTPUT_SHAPE: &'static [#core::primitive::usize] = #output_slice;
                /// Every layer with its output shape and parameter count.
                pub const LAYERS: &'static [#typednet::LayerInfo] = __LAYERS;
                /// Number of trainable parameters (the same as PyTorch's count).
                pub const PARAMETERS: #core::primitive::usize = #total_params;
            }

            impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #name<E, D> {
                /// The Keras-style summary table of this network.
                pub fn summary(&self) -> ::std::string::String {
                    <Self as #typednet::Network>::summary()
                }
            }

            impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #typednet::Network for #name<E, D> {
                const NAME: &'static #core::primitive::str = #name_string;
                const INPUT_SHAPE: &'static [#core::primitive::usize] = #input_slice;
                const OUTPUT_SHAPE: &'static [#core::primitive::usize] = #output_slice;
                const LAYERS: &'static [#typednet::LayerInfo] = __LAYERS;
                const PARAMETERS: #core::primitive::usize = #total_params;
                type Input = #input_marker;
                type Output = #output_marker;
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>> #name<E, D> {
                /// Builds the network on `device`, initialising parameters as PyTorch does.
                pub fn try_new(device: &D) -> #core::result::Result<Self, D::Err> {
                    <Self as #dfdx::nn::BuildModule<D, E>>::try_build(device)
                }

                /// Builds the network on `device`, initialising parameters as PyTorch does.
                pub fn new(device: &D) -> Self {
                    <Self as #dfdx::nn::BuildModule<D, E>>::build(device)
                }

                /// Runs the network on one example or a batch, with or without a gradient tape.
                pub fn try_forward<X: #typednet::NetworkInput<Self>>(&self, x: X) -> #core::result::Result<X::Output, X::Error> {
                    #typednet::NetworkInput::try_run(x, self)
                }

                /// Runs the network on one example or a batch, with or without a gradient tape.
                pub fn forward<X: #typednet::NetworkInput<Self>>(&self, x: X) -> X::Output {
                    match #typednet::NetworkInput::try_run(x, self) {
                        #core::result::Result::Ok(y) => y,
                        #core::result::Result::Err(e) => #core::panic!("{}::forward failed: {:?}", #name_string, e),
                    }
                }

                /// The training forward: as [`try_forward`](Self::try_forward), and with a tape
                /// it also updates what training updates besides the parameters (batch
                /// normalisation's running statistics). PyTorch's `model.train(); model(x)`.
                pub fn try_forward_mut<X: #typednet::NetworkInput<Self>>(&mut self, x: X) -> #core::result::Result<X::Output, X::Error> {
                    #typednet::NetworkInput::try_run_mut(x, self)
                }

                /// The training forward; see [`try_forward_mut`](Self::try_forward_mut).
                pub fn forward_mut<X: #typednet::NetworkInput<Self>>(&mut self, x: X) -> X::Output {
                    match #typednet::NetworkInput::try_run_mut(x, self) {
                        #core::result::Result::Ok(y) => y,
                        #core::result::Result::Err(e) => #core::panic!("{}::forward_mut failed: {:?}", #name_string, e),
                    }
                }

                #forward_batch_fn

                #forward_mut_fn

                #forward_heads_fns
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>> #dfdx::nn::modules::TensorCollection<E, D> for #name<E, D> {
                type To<E2: #dfdx::shapes::Dtype, D2: #dfdx::tensor_ops::Device<E2>> = #name<E2, D2>;

                fn iter_tensors<V: #dfdx::nn::modules::ModuleVisitor<Self, E, D>>(
                    visitor: &mut V,
                ) -> #core::result::Result<#core::option::Option<Self::To<V::E2, V::D2>>, V::Err> {
                    visitor.visit_fields(
                        #visit_tuple,
                        |#pattern_tuple| #name { #(#field_names,)* #marker_init },
                    )
                }
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>, B: #dfdx::shapes::Dim, T: #dfdx::tensor::Tape<E, D>>
                #typednet::NetworkInput<#name<E, D>> for #dfdx::tensor::Tensor<#batch_in, E, D, T>
            {
                type Output = #dfdx::tensor::Tensor<#batch_out, E, D, T>;
                type Error = D::Err;
                fn try_run(self, net: &#name<E, D>) -> #core::result::Result<Self::Output, D::Err> {
                    net.__forward_batch(self)
                }
                #run_mut_batch
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>, T: #dfdx::tensor::Tape<E, D>>
                #typednet::NetworkInput<#name<E, D>> for #dfdx::tensor::Tensor<#single_in, E, D, T>
            {
                type Output = #dfdx::tensor::Tensor<#single_out, E, D, T>;
                type Error = D::Err;
                fn try_run(self, net: &#name<E, D>) -> #core::result::Result<Self::Output, D::Err> {
                    use #dfdx::tensor_ops::ReshapeTo as _;
                    let __input_shape = *#dfdx::shapes::HasShape::shape(&self);
                    let batch = self.try_reshape_like(&#single_in_batched)?;
                    let out = net.__forward_batch(batch)?;
                    let __output_shape = *#dfdx::shapes::HasShape::shape(&out);
                    out.try_reshape_like(&#single_out_value)
                }
                #run_mut_single
            }

            /// A batch whose shape is known only at run time: checked once against the declared
            /// shape, with an error naming both when they differ.
            impl<E: #typednet::Element, D: #typednet::Device<E>, T: #dfdx::tensor::Tape<E, D>>
                #typednet::NetworkInput<#name<E, D>> for #dfdx::tensor::Tensor<#dynamic_in, E, D, T>
            {
                type Output = #dfdx::tensor::Tensor<#dynamic_out, E, D, T>;
                type Error = #typednet::ForwardError<D::Err>;
                fn try_run(self, net: &#name<E, D>) -> #core::result::Result<Self::Output, Self::Error> {
                    let x = #typednet::network::try_realize_batch::<_, #dynamic_realized, E, D, T>(#name_string, #input_slice, self)?;
                    net.__forward_batch(x).map_err(#typednet::ForwardError::Device)
                }
                #run_mut_dynamic
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>, X: #typednet::NetworkInput<#name<E, D>, Error = D::Err>>
                #dfdx::nn::Module<X> for #name<E, D>
            {
                type Output = X::Output;
                type Error = D::Err;
                fn try_forward(&self, x: X) -> #core::result::Result<X::Output, D::Err> {
                    #typednet::NetworkInput::try_run(x, self)
                }
            }

            #module_mut
        };
    }
}

fn param_type(op: &Op, paths: &Paths) -> TokenStream {
    let typednet = &paths.typednet;
    match *op {
        Op::Linear { input, output } => quote!(#typednet::layers::Linear<#input, #output, E, D>),
        Op::Conv {
            input_channels,
            output_channels,
            kernel: [kh, kw],
            bias: true,
            groups: 1,
            ..
        } => quote!(#typednet::layers::Conv2d<#input_channels, #output_channels, #kh, #kw, E, D>),
        Op::Conv {
            input_channels,
            output_channels,
            kernel: [kh, kw],
            groups,
            ..
        } if groups > 1 => {
            let per_group = input_channels / groups;
            quote!(#typednet::layers::GroupedConv2d<#per_group, #output_channels, #groups, #kh, #kw, E, D>)
        }
        Op::LocallyConnected {
            input_channels,
            output_channels,
            kernel: [kh, kw],
            output: [oh, ow],
            ..
        } => quote!(
            #typednet::layers::LocallyConnected2d<#input_channels, #output_channels, #kh, #kw, #oh, #ow, E, D>
        ),
        Op::Conv {
            input_channels,
            output_channels,
            kernel: [kh, kw],
            bias: false,
            ..
        } => {
            quote!(#typednet::layers::Conv2dNoBias<#input_channels, #output_channels, #kh, #kw, E, D>)
        }
        Op::ConvTranspose {
            input_channels,
            output_channels,
            kernel: [kh, kw],
            ..
        } => {
            quote!(#typednet::layers::ConvTranspose2d<#input_channels, #output_channels, #kh, #kw, E, D>)
        }
        Op::BatchNorm {
            features,
            image: true,
        } => quote!(#typednet::layers::BatchNorm2d<#features, E, D>),
        Op::BatchNorm {
            features,
            image: false,
        } => quote!(#typednet::layers::BatchNorm1d<#features, E, D>),
        Op::Recurrent {
            cell,
            input,
            hidden,
            bidirectional,
            ..
        } => {
            let cell = format_ident!("{}", cell.type_name());
            let cell = quote!(#typednet::recurrent::#cell<#input, #hidden, E, D>);
            if bidirectional {
                quote!(#typednet::recurrent::Bidirectional<#cell>)
            } else {
                cell
            }
        }
        _ => quote!(()),
    }
}

/// Nests items into tuples of at most six (dfdx implements field visiting for tuples up to six).
fn nest(items: &[TokenStream]) -> TokenStream {
    if items.len() <= 6 {
        return quote!((#(#items,)*));
    }
    let chunks: Vec<TokenStream> = items.chunks(6).map(|chunk| quote!((#(#chunk,)*))).collect();
    nest(&chunks)
}

/// One statement of `forward`: applies a layer to `x`, annotated with the output type the macro
/// inferred, so that dfdx's types and the macro's shapes are checked against each other.
fn forward_step(layer: &crate::infer::InferredLayer, paths: &Paths, mutable: bool) -> TokenStream {
    let Paths {
        dfdx,
        typednet,
        core,
    } = paths;
    let span: Span = layer.layer.span.start;
    let out_type = {
        let shape = batch_shape_type(layer.output, dfdx);
        quote!(#dfdx::tensor::Tensor<#shape, E, D, T>)
    };
    let field = &layer.name;
    let value = match &layer.op {
        Op::Linear { .. } => quote!(#typednet::ops::try_linear(x, &self.#field)?),
        Op::Conv {
            kernel,
            stride,
            padding,
            dilation,
            ..
        } if *dilation != [1, 1] => {
            let [sh, sw] = stride;
            let [ph, pw] = padding;
            let [dh, dw] = dilation;
            // The dilated extents d·(k − 1) + 1 are const generics the arguments cannot infer.
            let [eh, ew] = [0, 1].map(|a| dilation[a] * (kernel[a] - 1) + 1);
            quote!(#typednet::ops::try_dilated_conv2d::<
                _, _, _, _, _, _, _, #eh, #ew, _, _, _, _, _
            >(
                x,
                &self.#field,
                #typednet::ops::Conv2dGeometry { stride: [#sh, #sw], padding: [#ph, #pw] },
                [#dh, #dw],
            )?)
        }
        Op::Conv {
            stride,
            padding,
            bias,
            groups,
            ..
        } => {
            let [sh, sw] = stride;
            let [ph, pw] = padding;
            let function = if *groups > 1 {
                format_ident!("try_grouped_conv2d")
            } else if *bias {
                format_ident!("try_conv2d")
            } else {
                format_ident!("try_conv2d_no_bias")
            };
            quote!(#typednet::ops::#function(
                x,
                &self.#field,
                #typednet::ops::Conv2dGeometry { stride: [#sh, #sw], padding: [#ph, #pw] },
            )?)
        }
        Op::LocallyConnected {
            stride, padding, ..
        } => {
            let [sh, sw] = stride;
            let [ph, pw] = padding;
            let function = format_ident!("try_locally_connected2d");
            quote!(#typednet::ops::#function(
                x,
                &self.#field,
                #typednet::ops::Conv2dGeometry { stride: [#sh, #sw], padding: [#ph, #pw] },
            )?)
        }
        Op::ConvTranspose {
            stride,
            padding,
            output_padding,
            ..
        } => {
            let [sh, sw] = stride;
            let [ph, pw] = padding;
            let [qh, qw] = output_padding;
            quote!(#typednet::ops::try_conv_transpose2d(
                x,
                &self.#field,
                #typednet::ops::ConvTranspose2dGeometry {
                    stride: [#sh, #sw],
                    padding: [#ph, #pw],
                    output_padding: [#qh, #qw],
                },
            )?)
        }
        Op::MaxPool {
            window,
            stride,
            padding,
            padded,
        }
        | Op::AvgPool {
            window,
            stride,
            padding,
            padded,
        } => {
            let [wh, ww] = window;
            let [sh, sw] = stride;
            let max = matches!(layer.op, Op::MaxPool { .. });
            let function = if max {
                format_ident!("try_max_pool2d")
            } else {
                format_ident!("try_avg_pool2d")
            };
            let pool = quote!(#typednet::ops::#function(
                x,
                #typednet::ops::Pool2dGeometry { window: [#wh, #ww], stride: [#sh, #sw] },
            )?);
            if *padding == [0, 0] {
                pool
            } else {
                // Padding is a step of its own: −∞ for max pooling (a padded cell never wins),
                // 0 for average pooling (PyTorch's `count_include_pad=True`: the divisor stays
                // the window's size).
                let [ph, pw] = padding;
                let [hp, wp] = padded;
                let channels = match layer.output {
                    Shape::Image { c, .. } => c,
                    Shape::Vector(_) | Shape::Sequence { .. } => 0,
                };
                let fill = if max {
                    quote!(#typednet::ops::PadValue::NegativeInfinity)
                } else {
                    quote!(#typednet::ops::PadValue::Zero)
                };
                quote!({
                    let x: #dfdx::tensor::Tensor<(B, #dfdx::shapes::Const<#channels>, #dfdx::shapes::Const<#hp>, #dfdx::shapes::Const<#wp>), E, D, T> =
                        #typednet::ops::try_pad2d(x, [#ph, #pw], #fill)?;
                    #pool
                })
            }
        }
        Op::Flatten => quote!(#typednet::ops::try_flatten(x, batch)?),
        Op::GlobalAvgPool => quote!(#typednet::ops::try_global_avg_pool2d(x)?),
        Op::LocalResponseNorm {
            size,
            alpha,
            beta,
            k,
            channels,
            plane,
        } => {
            let bordered = channels + 2 * (size / 2);
            quote!(#typednet::ops::try_local_response_norm(
                x,
                #typednet::ops::LrnWindow::<#bordered, #plane> { size: #size, alpha: #alpha, beta: #beta, k: #k },
            )?)
        }
        Op::BatchNorm { image, .. } => {
            let function = match (image, mutable) {
                (true, false) => quote!(try_batch_norm2d(x, &self.#field)),
                (true, true) => quote!(try_batch_norm2d_mut(x, &mut self.#field)),
                (false, false) => quote!(try_batch_norm1d(x, &self.#field)),
                (false, true) => quote!(try_batch_norm1d_mut(x, &mut self.#field)),
            };
            quote!(#typednet::ops::#function?)
        }
        Op::Reshape => {
            let dims = layer.output.dims();
            quote!(#typednet::ops::try_reshape(x, (batch, #(#dfdx::shapes::Const::<#dims>,)*))?)
        }
        Op::Rows => quote!(#typednet::ops::try_rows(x)?),
        Op::Columns => quote!(#typednet::ops::try_columns(x)?),
        Op::Recurrent {
            input,
            hidden,
            last,
            bidirectional,
            ..
        } => {
            let recurrent = quote!(#typednet::recurrent);
            let width = if *bidirectional { 2 * hidden } else { *hidden };
            match (*last, *bidirectional) {
                (false, false) => quote!(
                    #recurrent::try_run_sequence::<_, #input, #hidden, B, _, E, D, T>(&self.#field, x, #core::option::Option::None)?.0
                ),
                (true, false) => quote!(
                    #recurrent::try_run_last_hidden::<_, #input, #hidden, B, _, E, D, T>(&self.#field, x)?
                ),
                (false, true) => quote!(
                    #recurrent::try_run_bidirectional::<_, #input, #hidden, #width, B, _, E, D, T>(
                        &self.#field.forward, &self.#field.backward, x, #core::option::Option::None,
                    )?.0
                ),
                (true, true) => quote!(
                    #recurrent::try_run_bidirectional_last::<_, #input, #hidden, #width, B, _, E, D, T>(
                        &self.#field.forward, &self.#field.backward, x,
                    )?
                ),
            }
        }
        Op::Dropout(p) => quote!(#typednet::ops::try_dropout(x, #p)?),
        Op::Relu => quote!(x.try_relu()?),
        Op::LeakyRelu(slope) => quote!(#typednet::ops::try_leaky_relu(x, #slope)?),
        Op::Sigmoid => quote!(x.try_sigmoid()?),
        Op::Tanh => quote!(x.try_tanh()?),
        // Over the features of a vector or of every step of a sequence; over the channels of
        // an image (PyTorch's `nn.Softmax(dim=1)`).
        Op::Softmax | Op::LogSoftmax => {
            let axis = proc_macro2::Literal::isize_unsuffixed(match layer.output {
                Shape::Sequence { .. } => 2,
                Shape::Vector(_) | Shape::Image { .. } => 1,
            });
            if matches!(layer.op, Op::Softmax) {
                quote!(x.try_softmax::<#dfdx::shapes::Axis<#axis>>()?)
            } else {
                quote!(x.try_log_softmax::<#dfdx::shapes::Axis<#axis>>()?)
            }
        }
        // The merges of branch nodes are written by `forward_nodes`.
        Op::Add | Op::Concat | Op::Head => return quote!(),
    };
    let _ = core;
    quote_spanned! {span=>
        let x: #out_type = #value;
    }
}

/// The statements of `forward` for a chain of nodes, each rebinding `x`.
///
/// A branch node runs each of its chains on the same input: the input's gradient tape is taken
/// off, handed to the first chain, taken off its result and handed to the next, so that one tape
/// records every chain (as dfdx's `GeneralizedResidual` does), and put back on the merged
/// result. The input itself is cloned (cheap: dfdx tensors share their data), keeping one id,
/// so the gradients of every chain add up on it.
///
/// A `head` runs only with `heads` (on the main chain, where the macro allows it), into a
/// variable of its own, on the input's clone with a fresh tape: its output carries the tape of
/// its own ops, merged with the main one when the losses are added.
///
/// A `linear` layer directly followed by `relu`, `sigmoid` or `tanh` becomes one statement,
/// [`fused_linear_step`].
fn forward_nodes(nodes: &[Node], paths: &Paths, mutable: bool, heads: bool) -> Vec<TokenStream> {
    let core = &paths.core;
    let mut fused_into_previous = false;
    nodes
        .iter()
        .enumerate()
        .map(|(index, node)| match node {
            Node::Layer(_) if std::mem::take(&mut fused_into_previous) => quote!(),
            Node::Layer(layer) => match nodes.get(index + 1) {
                Some(Node::Layer(next)) if fused_activation(layer, next).is_some() => {
                    fused_into_previous = true;
                    fused_linear_step(layer, next, paths)
                }
                Some(Node::Layer(next)) if conv_then_relu(layer, next) => {
                    fused_into_previous = true;
                    fused_conv_relu_step(layer, next, paths)
                }
                Some(Node::Layer(next)) if batch_norm_then_relu(layer, next) => {
                    fused_into_previous = true;
                    fused_batch_norm_relu_step(layer, next, paths, mutable)
                }
                _ => forward_step(layer, paths, mutable),
            },
            Node::Residual {
                body,
                shortcut,
                merge,
            } => {
                let body = forward_nodes(body, paths, mutable, false);
                let shortcut = forward_nodes(
                    shortcut.as_deref().unwrap_or_default(),
                    paths,
                    mutable,
                    false,
                );
                let out_type = tensor_type(merge, paths);
                let span = merge.layer.span.start;
                quote_spanned! {span=>
                    let x: #out_type = {
                        let (x, tape) = x.split_tape();
                        let __residual_input = #core::clone::Clone::clone(&x);
                        let x = x.put_tape(tape);
                        #(#body)*
                        let (__residual_body, tape) = x.split_tape();
                        let x = __residual_input.put_tape(tape);
                        #(#shortcut)*
                        x.try_add(__residual_body)?
                    };
                }
            }
            Node::Concat { branches, merge } => forward_concat(branches, merge, paths, mutable),
            Node::Head { .. } if !heads => quote!(),
            Node::Head { body, marker, .. } => {
                let body = forward_nodes(body, paths, mutable, false);
                let out_type = tensor_type(marker, paths);
                let variable = head_variable(marker);
                let span = marker.layer.span.start;
                quote_spanned! {span=>
                    let #variable: #out_type = {
                        let x = x.retaped::<T>();
                        #(#body)*
                        x
                    };
                }
            }
        })
        .collect()
}

/// The `typednet::ops::LinearActivation` for `linear` followed by `activation`, when the two
/// can run as one op.
fn fused_activation(linear: &InferredLayer, activation: &InferredLayer) -> Option<TokenStream> {
    if !matches!(linear.op, Op::Linear { .. }) {
        return None;
    }
    match activation.op {
        Op::Relu => Some(quote!(Relu)),
        Op::Sigmoid => Some(quote!(Sigmoid)),
        Op::Tanh => Some(quote!(Tanh)),
        Op::LeakyRelu(slope) => Some(quote!(LeakyRelu(#slope))),
        _ => None,
    }
}

/// One statement for a `linear` layer and the activation after it: `try_linear_activation`,
/// whose CPU kernel applies the activation where the product lies (see `typednet::ops::linear`).
/// The result is annotated with the activation's output type, as `forward_step` would.
fn fused_linear_step(
    linear: &InferredLayer,
    activation: &InferredLayer,
    paths: &Paths,
) -> TokenStream {
    let typednet = &paths.typednet;
    let span: Span = linear.layer.span.start;
    let out_type = tensor_type(activation, paths);
    let field = &linear.name;
    let variant = fused_activation(linear, activation).unwrap_or_else(|| quote!(Identity));
    quote_spanned! {span=>
        let x: #out_type = #typednet::ops::try_linear_activation(
            x,
            &self.#field,
            #typednet::ops::LinearActivation::#variant,
        )?;
    }
}

/// Whether `layer` is a plain convolution (with its bias, one group, no dilation) and `next`
/// the ReLU after it, which `typednet::ops::try_conv2d_relu` applies in the same pass.
fn conv_then_relu(layer: &InferredLayer, next: &InferredLayer) -> bool {
    matches!(
        layer.op,
        Op::Conv {
            bias: true,
            groups: 1,
            dilation: [1, 1],
            ..
        }
    ) && matches!(next.op, Op::Relu)
}

/// One statement for a convolution and the ReLU after it, annotated with the ReLU's output
/// type as `forward_step` would.
fn fused_conv_relu_step(conv: &InferredLayer, relu: &InferredLayer, paths: &Paths) -> TokenStream {
    let typednet = &paths.typednet;
    let span: Span = conv.layer.span.start;
    let out_type = tensor_type(relu, paths);
    let field = &conv.name;
    let Op::Conv {
        stride, padding, ..
    } = &conv.op
    else {
        return quote!();
    };
    let [sh, sw] = stride;
    let [ph, pw] = padding;
    quote_spanned! {span=>
        let x: #out_type = #typednet::ops::try_conv2d_relu(
            x,
            &self.#field,
            #typednet::ops::Conv2dGeometry { stride: [#sh, #sw], padding: [#ph, #pw] },
        )?;
    }
}

/// Whether `layer` is a batch norm and `next` the ReLU after it, which
/// `typednet::ops::try_batch_norm2d_relu` and its kin apply in the same pass.
fn batch_norm_then_relu(layer: &InferredLayer, next: &InferredLayer) -> bool {
    matches!(layer.op, Op::BatchNorm { .. }) && matches!(next.op, Op::Relu)
}

/// One statement for a batch norm and the ReLU after it, annotated with the ReLU's output type
/// as `forward_step` would.
fn fused_batch_norm_relu_step(
    batch_norm: &InferredLayer,
    relu: &InferredLayer,
    paths: &Paths,
    mutable: bool,
) -> TokenStream {
    let typednet = &paths.typednet;
    let span: Span = batch_norm.layer.span.start;
    let out_type = tensor_type(relu, paths);
    let field = &batch_norm.name;
    let image = matches!(batch_norm.op, Op::BatchNorm { image: true, .. });
    let call = match (image, mutable) {
        (true, false) => quote!(try_batch_norm2d_relu(x, &self.#field)),
        (true, true) => quote!(try_batch_norm2d_relu_mut(x, &mut self.#field)),
        (false, false) => quote!(try_batch_norm1d_relu(x, &self.#field)),
        (false, true) => quote!(try_batch_norm1d_relu_mut(x, &mut self.#field)),
    };
    quote_spanned! {span=>
        let x: #out_type = #typednet::ops::#call?;
    }
}

/// The local variable holding a head's output in `try_forward_with_heads`.
fn head_variable(marker: &InferredLayer) -> Ident {
    format_ident!("__head_{}", marker.name)
}

fn forward_concat(
    branches: &[Vec<Node>],
    merge: &InferredLayer,
    paths: &Paths,
    mutable: bool,
) -> TokenStream {
    let Paths {
        dfdx,
        typednet,
        core,
    } = paths;
    let span = merge.layer.span.start;
    let last = branches.len() - 1;
    let mut statements = Vec::new();
    for (i, branch) in branches.iter().enumerate() {
        let steps = forward_nodes(branch, paths, mutable, false);
        let result = format_ident!("__branch{}", i);
        // The last branch may take the input itself rather than a clone.
        let input = if i == last {
            quote!(x)
        } else {
            quote!(#core::clone::Clone::clone(&x))
        };
        statements.push(quote_spanned! {span=>
            let #result = {
                let x = #input.put_tape(tape);
                #(#steps)*
                x
            };
            let (#result, tape) = #result.split_tape();
        });
    }
    // Join left to right; the running result carries the tape.
    let function = match merge.output {
        Shape::Image { .. } => quote!(#typednet::ops::try_concat_channels),
        Shape::Vector(_) => quote!(#typednet::ops::try_concat_features),
        Shape::Sequence { .. } => quote!(#typednet::ops::try_concat_sequence_features),
    };
    let mut width = 0usize;
    let mut joins = Vec::new();
    for (i, branch) in branches.iter().enumerate() {
        let part = format_ident!("__branch{}", i);
        let Some(last_node) = branch.last() else {
            continue;
        };
        let (size, shape) = match (last_node_output(last_node), merge.output) {
            (Shape::Image { c, .. }, Shape::Image { h, w, .. }) => {
                (c, Shape::Image { c: width + c, h, w })
            }
            (Shape::Sequence { features, .. }, Shape::Sequence { steps, .. }) => (
                features,
                Shape::Sequence {
                    steps,
                    features: width + features,
                },
            ),
            (Shape::Vector(f), _) => (f, Shape::Vector(width + f)),
            (Shape::Image { c, .. } | Shape::Sequence { features: c, .. }, _) => {
                (c, Shape::Vector(width + c))
            }
        };
        width += size;
        if i == 0 {
            joins.push(quote_spanned!(span=> let __joined = #part.put_tape(tape);));
            continue;
        }
        let batch_shape = batch_shape_type(shape, dfdx);
        joins.push(quote_spanned! {span=>
            let __joined: #dfdx::tensor::Tensor<#batch_shape, E, D, T> = #function(__joined, #part)?;
        });
    }
    let out_type = tensor_type(merge, paths);
    quote_spanned! {span=>
        let x: #out_type = {
            let (x, tape) = x.split_tape();
            #(#statements)*
            #(#joins)*
            __joined
        };
    }
}

fn last_node_output(node: &Node) -> Shape {
    match node {
        Node::Layer(layer) => layer.output,
        Node::Residual { merge, .. } | Node::Concat { merge, .. } => merge.output,
        Node::Head { input, .. } => *input,
    }
}

fn tensor_type(layer: &InferredLayer, paths: &Paths) -> TokenStream {
    let dfdx = &paths.dfdx;
    let shape = batch_shape_type(layer.output, dfdx);
    quote!(#dfdx::tensor::Tensor<#shape, E, D, T>)
}

/// The shape table written into the struct's rustdoc, so an IDE hover shows it.
fn shape_table_doc(name: &str, net: &InferredNetwork) -> String {
    let mut doc = format!(
        "\n\n# Shapes\n\nGenerated by `network!` for `{name}`; `B` is the batch size.\n\n| layer | declared as | output shape | parameters |\n|---|---|---|---|\n| input | | `{}` | |\n",
        batch_describe(net.input)
    );
    let layers = net.layers();
    for l in &layers {
        doc.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} |\n",
            l.name,
            l.layer.text,
            batch_describe(l.output),
            l.op.parameters()
        ));
    }
    let total: usize = layers.iter().map(|l| l.op.parameters()).sum();
    doc.push_str(&format!("| **total** | | | **{total}** |\n"));
    doc
}

fn batch_describe(shape: Shape) -> String {
    let dims: Vec<String> = shape.dims().iter().map(|d| d.to_string()).collect();
    format!("[B, {}]", dims.join(", "))
}

/// `pub struct Ae = Encoder -> Decoder;`: a struct holding each network, whose forward runs them
/// in turn. That each output fits the next input is checked by a trait bound with its own
/// message (`typednet::SameShape`), spanned on the network that does not fit.
pub fn expand_composition(header: &Header, stages: &[syn::Path]) -> TokenStream {
    let paths = Paths::new();
    let Paths {
        dfdx,
        typednet,
        core,
    } = &paths;
    let name = &header.name;
    let vis = &header.vis;
    let docs = &header.docs;
    let other_attrs = &header.other_attrs;
    let generics = struct_generics(&paths);
    let name_string = name.to_string();

    let fields = stage_field_names(stages);
    let autoencoder_items = autoencoder_items(header, stages, &fields, &paths);
    let gan_items = gan_items(header, stages, &fields, &paths);
    let stage_types: Vec<TokenStream> = stages.iter().map(|p| quote!(#p<E, D>)).collect();
    let default_types: Vec<TokenStream> = stages.iter().map(|p| quote!(#p)).collect();

    // A conditional GAN's discriminator takes the generator's output and the condition: its
    // own check (in `gan_items`) replaces the plain one.
    let conditional = header
        .gan
        .as_ref()
        .is_some_and(|gan| gan.condition.is_some());
    let checks = stages.windows(2).filter(|_| !conditional).map(|pair| {
        let (first, second) = (&pair[0], &pair[1]);
        let span = syn::spanned::Spanned::span(second);
        quote_spanned! {span=>
            #typednet::network::assert_fits::<#first, #second>();
        }
    });

    // Output types of each stage for input `X`, for the bounds of `forward`.
    let mut bounds = Vec::new();
    let mut current = quote!(X);
    for ty in &stage_types {
        bounds.push(quote!(#ty: #dfdx::nn::Module<#current, Error = D::Err>));
        current = quote!(<#ty as #dfdx::nn::Module<#current>>::Output);
    }
    let output = current;
    let calls: Vec<TokenStream> = fields
        .iter()
        .map(|f| quote!(let x = #dfdx::nn::Module::try_forward(&self.#f, x)?;))
        .collect();
    // The training forward runs each stage's `forward_mut` (dfdx's `ModuleMut`), so stages with
    // batch normalisation update their running statistics inside a composition too.
    let mut bounds_mut = Vec::new();
    let mut current = quote!(X);
    for ty in &stage_types {
        bounds_mut.push(quote!(#ty: #dfdx::nn::ModuleMut<#current, Error = D::Err>));
        current = quote!(<#ty as #dfdx::nn::ModuleMut<#current>>::Output);
    }
    let output_mut = current;
    let calls_mut: Vec<TokenStream> = fields
        .iter()
        .map(|f| quote!(let x = #dfdx::nn::ModuleMut::try_forward_mut(&mut self.#f, x)?;))
        .collect();
    let first_type = &default_types[0];
    let last_type = &default_types[default_types.len() - 1];
    let first_generic = &stage_types[0];
    let last_generic = &stage_types[stage_types.len() - 1];
    let visits: Vec<TokenStream> = fields
        .iter()
        .map(|f| {
            let label = f.to_string();
            quote!(Self::module(#label, |s| &s.#f, |s| &mut s.#f))
        })
        .collect();
    let patterns: Vec<TokenStream> = fields.iter().map(|f| quote!(#f)).collect();
    let visit_tuple = nest(&visits);
    let pattern_tuple = nest(&patterns);
    let field_docs = stages.iter().map(|p| {
        let doc = format!("Stage `{}`.", quote!(#p).to_string().replace(' ', ""));
        quote!(#[doc = #doc])
    });
    let doc = format!(
        "\n\n# Shapes\n\nGenerated by `network!`: runs {} in turn; see each network for its shape table.",
        stages
            .iter()
            .map(|p| format!("`{}`", quote!(#p).to_string().replace(' ', "")))
            .collect::<Vec<_>>()
            .join(", then ")
    );

    quote! {
        #(#docs)*
        #[doc = #doc]
        #(#other_attrs)*
        #[derive(#core::fmt::Debug, #core::clone::Clone)]
        #vis struct #name #generics {
            #(#field_docs pub #fields: #stage_types,)*
        }

        const _: () = {
            use #dfdx::nn::modules::{ModuleVisitor as _, TensorCollection as _};

            const _: fn() = || {
                #(#checks)*
            };

            const __LAYER_COUNT: #core::primitive::usize = 0 #(+ <#default_types as #typednet::Network>::LAYERS.len())*;
            const __LAYERS: [#typednet::LayerInfo; __LAYER_COUNT] =
                #typednet::network::concat_layers::<__LAYER_COUNT>(&[#(<#default_types as #typednet::Network>::LAYERS),*]);

            const __INPUT_SHAPE: &'static [#core::primitive::usize] = <#first_type as #typednet::Network>::INPUT_SHAPE;
            const __OUTPUT_SHAPE: &'static [#core::primitive::usize] = <#last_type as #typednet::Network>::OUTPUT_SHAPE;
            const __PARAMETERS: #core::primitive::usize = 0 #(+ <#default_types as #typednet::Network>::PARAMETERS)*;

            /// Shapes and sizes of the network, known at compile time; the same values are on
            /// the [`Network`](::typednet::Network) trait for every dtype and device.
            impl #name<#core::primitive::f32, #dfdx::tensor::Cpu> {
                /// Name of the network.
                pub const NAME: &'static #core::primitive::str = #name_string;
                /// Shape of one input example.
                pub const INPUT_SHAPE: &'static [#core::primitive::usize] = __INPUT_SHAPE;
                /// Shape of one output example.
                pub const OUTPUT_SHAPE: &'static [#core::primitive::usize] = __OUTPUT_SHAPE;
                /// Every layer of every stage, in order.
                pub const LAYERS: &'static [#typednet::LayerInfo] = &__LAYERS;
                /// Number of trainable parameters of all stages.
                pub const PARAMETERS: #core::primitive::usize = __PARAMETERS;
            }

            impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #name<E, D> {
                /// The Keras-style summary table of this network.
                pub fn summary(&self) -> ::std::string::String {
                    <Self as #typednet::Network>::summary()
                }
            }

            impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #typednet::Network for #name<E, D> {
                const NAME: &'static #core::primitive::str = #name_string;
                const INPUT_SHAPE: &'static [#core::primitive::usize] = __INPUT_SHAPE;
                const OUTPUT_SHAPE: &'static [#core::primitive::usize] = __OUTPUT_SHAPE;
                const LAYERS: &'static [#typednet::LayerInfo] = &__LAYERS;
                const PARAMETERS: #core::primitive::usize = __PARAMETERS;
                type Input = <#first_generic as #typednet::Network>::Input;
                type Output = <#last_generic as #typednet::Network>::Output;
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>> #name<E, D> {
                /// Builds every stage on `device`.
                pub fn try_new(device: &D) -> #core::result::Result<Self, D::Err> {
                    <Self as #dfdx::nn::BuildModule<D, E>>::try_build(device)
                }

                /// Builds every stage on `device`.
                pub fn new(device: &D) -> Self {
                    <Self as #dfdx::nn::BuildModule<D, E>>::build(device)
                }

                /// Runs the stages in turn on one example or a batch.
                #[allow(clippy::type_complexity)]
                pub fn try_forward<X>(&self, x: X) -> #core::result::Result<#output, D::Err>
                where
                    #(#bounds,)*
                {
                    #(#calls)*
                    #core::result::Result::Ok(x)
                }

                /// Runs the stages in turn on one example or a batch.
                #[allow(clippy::type_complexity)]
                pub fn forward<X>(&self, x: X) -> #output
                where
                    #(#bounds,)*
                {
                    match self.try_forward(x) {
                        #core::result::Result::Ok(y) => y,
                        #core::result::Result::Err(e) => #core::panic!("{}::forward failed: {:?}", #name_string, e),
                    }
                }

                /// The training forward: each stage's `forward_mut` in turn (batch
                /// normalisation updates its running statistics when `x` carries a tape).
                #[allow(clippy::type_complexity)]
                pub fn try_forward_mut<X>(&mut self, x: X) -> #core::result::Result<#output_mut, D::Err>
                where
                    #(#bounds_mut,)*
                {
                    #(#calls_mut)*
                    #core::result::Result::Ok(x)
                }

                /// The training forward; see [`try_forward_mut`](Self::try_forward_mut).
                #[allow(clippy::type_complexity)]
                pub fn forward_mut<X>(&mut self, x: X) -> #output_mut
                where
                    #(#bounds_mut,)*
                {
                    match self.try_forward_mut(x) {
                        #core::result::Result::Ok(y) => y,
                        #core::result::Result::Err(e) => #core::panic!("{}::forward_mut failed: {:?}", #name_string, e),
                    }
                }
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>, X> #dfdx::nn::Module<X> for #name<E, D>
            where
                #(#bounds,)*
            {
                type Output = #output;
                type Error = D::Err;
                #[allow(clippy::type_complexity)]
                fn try_forward(&self, x: X) -> #core::result::Result<#output, D::Err> {
                    #(#calls)*
                    #core::result::Result::Ok(x)
                }
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>, X> #dfdx::nn::ModuleMut<X> for #name<E, D>
            where
                #(#bounds_mut,)*
            {
                type Output = #output_mut;
                type Error = D::Err;
                #[allow(clippy::type_complexity)]
                fn try_forward_mut(&mut self, x: X) -> #core::result::Result<#output_mut, D::Err> {
                    #(#calls_mut)*
                    #core::result::Result::Ok(x)
                }
            }

            impl<E: #typednet::Element, D: #typednet::Device<E>> #dfdx::nn::modules::TensorCollection<E, D> for #name<E, D> {
                type To<E2: #dfdx::shapes::Dtype, D2: #dfdx::tensor_ops::Device<E2>> = #name<E2, D2>;

                fn iter_tensors<V: #dfdx::nn::modules::ModuleVisitor<Self, E, D>>(
                    visitor: &mut V,
                ) -> #core::result::Result<#core::option::Option<Self::To<V::E2, V::D2>>, V::Err> {
                    visitor.visit_fields(
                        #visit_tuple,
                        |#pattern_tuple| #name { #(#fields,)* },
                    )
                }
            }

            #autoencoder_items
            #gan_items
        };
    }
}

/// The extras of `#[autoencoder] pub struct Ae = Encoder -> Decoder;`: the check that the
/// decoder gives back the encoder's input shape (the composition already checks that it takes
/// the code), `encode` / `decode` / `reconstruct`, and `typednet::autoencoder::Autoencoder`.
fn autoencoder_items(
    header: &Header,
    stages: &[syn::Path],
    fields: &[Ident],
    paths: &Paths,
) -> TokenStream {
    let Paths {
        dfdx,
        typednet,
        core,
    } = paths;
    let (Some(_), [encoder_path, decoder_path], [encoder, decoder]) =
        (header.autoencoder, stages, fields)
    else {
        return TokenStream::new();
    };
    let name = &header.name;
    let name_string = name.to_string();
    let decoder_span = syn::spanned::Spanned::span(decoder_path);
    let check = quote_spanned! {decoder_span=>
        #typednet::autoencoder::assert_gives_back::<#encoder_path, #decoder_path>();
    };
    let encoder_type = quote!(#encoder_path<E, D>);
    let decoder_type = quote!(#decoder_path<E, D>);
    quote! {
        const _: fn() = || {
            #check
        };

        impl<E: #typednet::Element, D: #typednet::Device<E>> #name<E, D> {
            /// The code of `x` (one example or a batch): the encoder's output.
            pub fn try_encode<X>(&self, x: X) -> #core::result::Result<<#encoder_type as #dfdx::nn::Module<X>>::Output, D::Err>
            where
                #encoder_type: #dfdx::nn::Module<X, Error = D::Err>,
            {
                #dfdx::nn::Module::try_forward(&self.#encoder, x)
            }

            /// The code of `x`; see [`try_encode`](Self::try_encode).
            pub fn encode<X>(&self, x: X) -> <#encoder_type as #dfdx::nn::Module<X>>::Output
            where
                #encoder_type: #dfdx::nn::Module<X, Error = D::Err>,
            {
                match self.try_encode(x) {
                    #core::result::Result::Ok(z) => z,
                    #core::result::Result::Err(e) => #core::panic!("{}::encode failed: {:?}", #name_string, e),
                }
            }

            /// The decoder's output for a code `z` (one code or a batch).
            pub fn try_decode<Z>(&self, z: Z) -> #core::result::Result<<#decoder_type as #dfdx::nn::Module<Z>>::Output, D::Err>
            where
                #decoder_type: #dfdx::nn::Module<Z, Error = D::Err>,
            {
                #dfdx::nn::Module::try_forward(&self.#decoder, z)
            }

            /// The decoder's output for a code `z`; see [`try_decode`](Self::try_decode).
            pub fn decode<Z>(&self, z: Z) -> <#decoder_type as #dfdx::nn::Module<Z>>::Output
            where
                #decoder_type: #dfdx::nn::Module<Z, Error = D::Err>,
            {
                match self.try_decode(z) {
                    #core::result::Result::Ok(y) => y,
                    #core::result::Result::Err(e) => #core::panic!("{}::decode failed: {:?}", #name_string, e),
                }
            }

            /// The reconstruction `decode(encode(x))`, which has `x`'s shape.
            #[allow(clippy::type_complexity)]
            pub fn try_reconstruct<X>(
                &self,
                x: X,
            ) -> #core::result::Result<<#decoder_type as #dfdx::nn::Module<<#encoder_type as #dfdx::nn::Module<X>>::Output>>::Output, D::Err>
            where
                #encoder_type: #dfdx::nn::Module<X, Error = D::Err>,
                #decoder_type: #dfdx::nn::Module<<#encoder_type as #dfdx::nn::Module<X>>::Output, Error = D::Err>,
            {
                let z = #dfdx::nn::Module::try_forward(&self.#encoder, x)?;
                #dfdx::nn::Module::try_forward(&self.#decoder, z)
            }

            /// The reconstruction; see [`try_reconstruct`](Self::try_reconstruct).
            #[allow(clippy::type_complexity)]
            pub fn reconstruct<X>(
                &self,
                x: X,
            ) -> <#decoder_type as #dfdx::nn::Module<<#encoder_type as #dfdx::nn::Module<X>>::Output>>::Output
            where
                #encoder_type: #dfdx::nn::Module<X, Error = D::Err>,
                #decoder_type: #dfdx::nn::Module<<#encoder_type as #dfdx::nn::Module<X>>::Output, Error = D::Err>,
            {
                match self.try_reconstruct(x) {
                    #core::result::Result::Ok(y) => y,
                    #core::result::Result::Err(e) => #core::panic!("{}::reconstruct failed: {:?}", #name_string, e),
                }
            }
        }

        impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #typednet::autoencoder::Autoencoder for #name<E, D> {
            type Encoder = #encoder_type;
            type Decoder = #decoder_type;
            fn encoder(&self) -> &Self::Encoder {
                &self.#encoder
            }
            fn decoder(&self) -> &Self::Decoder {
                &self.#decoder
            }
            fn encoder_mut(&mut self) -> &mut Self::Encoder {
                &mut self.#encoder
            }
            fn decoder_mut(&mut self) -> &mut Self::Decoder {
                &mut self.#decoder
            }
        }
    }
}

/// The extras of `#[gan] pub struct Gan = Generator -> Discriminator;`: the check that the
/// discriminator gives one score per example (and, for `#[gan(condition = C)]`, that the
/// generator takes noise + C features and the discriminator the sample + C features),
/// `generate` / `discriminate`, and `typednet::gan::Gan`.
fn gan_items(
    header: &Header,
    stages: &[syn::Path],
    fields: &[Ident],
    paths: &Paths,
) -> TokenStream {
    let Paths {
        dfdx,
        typednet,
        core,
    } = paths;
    let (Some(gan), [generator_path, discriminator_path], [generator, discriminator]) =
        (&header.gan, stages, fields)
    else {
        return TokenStream::new();
    };
    let name = &header.name;
    let name_string = name.to_string();
    let discriminator_span = syn::spanned::Spanned::span(discriminator_path);
    let score_check = quote_spanned! {discriminator_span=>
        #typednet::gan::assert_scores::<#discriminator_path>();
    };
    let (condition, condition_check) = match gan.condition {
        None => (0, TokenStream::new()),
        Some((classes, _)) => {
            let generator_message = format!(
                "conditional GAN `{name}`: the generator must take a vector of noise followed by \
                 the {classes} condition features, so its input must be a vector of more than \
                 {classes}, and it must give a vector"
            );
            let discriminator_message = format!(
                "conditional GAN `{name}`: the discriminator must take the generator's output \
                 followed by the {classes} condition features, so its input size must be the \
                 generator's output size + {classes}"
            );
            let generator_span = syn::spanned::Spanned::span(generator_path);
            // The check's call starts and ends with tokens spanned on the network at fault, so
            // that the compiler's error underlines it rather than the whole macro call.
            let generator_check = quote_spanned! {generator_span=>
                const _: () = {
                    use #typednet::gan::check_conditional_generator as __check;
                    __check(
                        <#generator_path as #typednet::Network>::INPUT_SHAPE,
                        <#generator_path as #typednet::Network>::OUTPUT_SHAPE,
                        #classes,
                        #generator_message,
                    )
                };
            };
            let discriminator_check = quote_spanned! {discriminator_span=>
                const _: () = {
                    use #typednet::gan::check_conditional_discriminator as __check;
                    __check(
                        <#generator_path as #typednet::Network>::OUTPUT_SHAPE,
                        <#discriminator_path as #typednet::Network>::INPUT_SHAPE,
                        #classes,
                        #discriminator_message,
                    )
                };
            };
            let check = quote!(#generator_check #discriminator_check);
            (classes, check)
        }
    };
    let generator_type = quote!(#generator_path<E, D>);
    let discriminator_type = quote!(#discriminator_path<E, D>);
    quote! {
        const _: fn() = || {
            #score_check
        };
        #condition_check

        impl<E: #typednet::Element, D: #typednet::Device<E>> #name<E, D> {
            /// The generator's output for noise `z` (one vector or a batch; for a conditional
            /// GAN, the noise followed by the one-hot condition).
            pub fn try_generate<Z>(&self, z: Z) -> #core::result::Result<<#generator_type as #dfdx::nn::Module<Z>>::Output, D::Err>
            where
                #generator_type: #dfdx::nn::Module<Z, Error = D::Err>,
            {
                #dfdx::nn::Module::try_forward(&self.#generator, z)
            }

            /// The generator's output; see [`try_generate`](Self::try_generate).
            pub fn generate<Z>(&self, z: Z) -> <#generator_type as #dfdx::nn::Module<Z>>::Output
            where
                #generator_type: #dfdx::nn::Module<Z, Error = D::Err>,
            {
                match self.try_generate(z) {
                    #core::result::Result::Ok(x) => x,
                    #core::result::Result::Err(e) => #core::panic!("{}::generate failed: {:?}", #name_string, e),
                }
            }

            /// The discriminator's score (a logit: positive means "real") for `x` (for a
            /// conditional GAN, the sample followed by the one-hot condition).
            pub fn try_discriminate<X>(&self, x: X) -> #core::result::Result<<#discriminator_type as #dfdx::nn::Module<X>>::Output, D::Err>
            where
                #discriminator_type: #dfdx::nn::Module<X, Error = D::Err>,
            {
                #dfdx::nn::Module::try_forward(&self.#discriminator, x)
            }

            /// The discriminator's score; see [`try_discriminate`](Self::try_discriminate).
            pub fn discriminate<X>(&self, x: X) -> <#discriminator_type as #dfdx::nn::Module<X>>::Output
            where
                #discriminator_type: #dfdx::nn::Module<X, Error = D::Err>,
            {
                match self.try_discriminate(x) {
                    #core::result::Result::Ok(y) => y,
                    #core::result::Result::Err(e) => #core::panic!("{}::discriminate failed: {:?}", #name_string, e),
                }
            }
        }

        impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #typednet::gan::Gan for #name<E, D> {
            type Generator = #generator_type;
            type Discriminator = #discriminator_type;
            const CONDITION: #core::primitive::usize = #condition;
            fn generator(&self) -> &Self::Generator {
                &self.#generator
            }
            fn discriminator(&self) -> &Self::Discriminator {
                &self.#discriminator
            }
            fn parts_mut(&mut self) -> (&mut Self::Generator, &mut Self::Discriminator) {
                (&mut self.#generator, &mut self.#discriminator)
            }
        }
    }
}

/// `Encoder` → `encoder`; a network used twice gets `_2`, `_3`, … on later uses.
fn stage_field_names(stages: &[syn::Path]) -> Vec<Ident> {
    let mut names: Vec<Ident> = Vec::new();
    for path in stages {
        let last = path
            .segments
            .last()
            .map(|s| syn::ext::IdentExt::unraw(&s.ident).to_string())
            .unwrap_or_else(|| "stage".to_string());
        let base = snake_case(&last);
        let mut candidate = base.clone();
        let mut n = 1;
        while names.iter().any(|existing| *existing == candidate) {
            n += 1;
            candidate = format!("{base}_{n}");
        }
        names.push(format_ident!("{}", candidate));
    }
    names
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    // A keyword (`Type` → `type`) cannot be a field name.
    if syn::parse_str::<Ident>(&out).is_err() {
        out.push_str("_net");
    }
    out
}
