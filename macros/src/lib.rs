//! The `network!` macro of typednet. Use it through the `typednet` crate, which re-exports it
//! and documents the language.
//!
//! The macro is a pipeline: parse (`ast.rs`) → infer shapes and check every layer (`infer.rs`,
//! with the window arithmetic in `arith.rs`) → generate code (`expand.rs`), or, after an error,
//! the fallback type (`fallback.rs`) next to the `compile_error!`. No stage panics: every
//! mistake is a `syn::Error` with a span, and all of a declaration's errors come in one pass.

mod arith;
mod ast;
mod expand;
mod fallback;
mod infer;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    match syn::parse::<ast::Input>(input) {
        Ok(input) => expand_all(&input).into(),
        Err(error) => error.into_compile_error().into(),
    }
}

fn expand_all(input: &ast::Input) -> TokenStream2 {
    input
        .declarations
        .iter()
        .map(|declaration| {
            let header = &declaration.header;
            let result = match &declaration.body {
                Ok(ast::Body::Chain { input, items }) => {
                    infer::infer(input, items, header.exact_fit)
                        .map(|net| expand::expand_network(header, &net))
                }
                Ok(ast::Body::Composition { stages }) => {
                    if header.exact_fit {
                        Err(syn::Error::new(
                            header.name.span(),
                            "`#[exact_fit]` applies to a chain of layers, not to a composition",
                        ))
                    } else {
                        Ok(expand::expand_composition(header, stages))
                    }
                }
                Err(error) => Err(error.clone()),
            };
            match result {
                Ok(tokens) => tokens,
                Err(error) => {
                    let mut tokens = error.into_compile_error();
                    tokens.extend(fallback::expand(header));
                    tokens
                }
            }
        })
        .collect()
}
