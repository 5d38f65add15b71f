//! What is emitted for a declaration with an error, next to the `compile_error!`: the network
//! type with its usual methods, so the rest of the user's code still resolves and only the real
//! mistake is reported (the approach of thiserror's `fallback.rs`). None of it can run: the
//! crate does not compile while the error stands.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Header;
use crate::expand::{struct_generics, Paths};

pub fn expand(header: &Header) -> TokenStream {
    let paths = Paths::new();
    let Paths {
        dfdx,
        typednet,
        core,
    } = &paths;
    let name = &header.name;
    let vis = &header.vis;
    let docs = &header.docs;
    let generics = struct_generics(&paths);
    let name_string = name.to_string();
    quote! {
        #(#docs)*
        #[derive(#core::fmt::Debug, #core::clone::Clone)]
        #vis struct #name #generics {
            #[doc(hidden)]
            pub __marker: #core::marker::PhantomData<(E, D)>,
        }

        const _: () = {
            impl #name<#core::primitive::f32, #dfdx::tensor::Cpu> {
                pub const NAME: &'static #core::primitive::str = #name_string;
                pub const INPUT_SHAPE: &'static [#core::primitive::usize] = &[];
                pub const OUTPUT_SHAPE: &'static [#core::primitive::usize] = &[];
                pub const LAYERS: &'static [#typednet::LayerInfo] = &[];
                pub const PARAMETERS: #core::primitive::usize = 0;
            }

            impl<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> #name<E, D> {

                pub fn new(_device: &D) -> Self {
                    #core::unreachable!("the declaration of this network has a compile error")
                }
                pub fn try_new(_device: &D) -> #core::result::Result<Self, D::Err> {
                    #core::unreachable!("the declaration of this network has a compile error")
                }
                pub fn forward<S: #dfdx::shapes::Shape, T>(&self, _x: #dfdx::tensor::Tensor<S, E, D, T>) -> ! {
                    #core::unreachable!("the declaration of this network has a compile error")
                }
                pub fn try_forward<S: #dfdx::shapes::Shape, T>(&self, _x: #dfdx::tensor::Tensor<S, E, D, T>) -> ! {
                    #core::unreachable!("the declaration of this network has a compile error")
                }
                pub fn summary(&self) -> ::std::string::String {
                    #core::unreachable!("the declaration of this network has a compile error")
                }
            }

            impl<E: #typednet::Element, D: #dfdx::tensor_ops::Device<E>> #dfdx::nn::modules::TensorCollection<E, D> for #name<E, D> {
                type To<E2: #dfdx::shapes::Dtype, D2: #dfdx::tensor_ops::Device<E2>> = #name<E2, D2>;

                fn iter_tensors<V: #dfdx::nn::modules::ModuleVisitor<Self, E, D>>(
                    visitor: &mut V,
                ) -> #core::result::Result<#core::option::Option<Self::To<V::E2, V::D2>>, V::Err> {
                    visitor.visit_fields((), |()| #name { __marker: #core::marker::PhantomData })
                }
            }
        };
    }
}
