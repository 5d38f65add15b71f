//! The `network!` macro of typednet. Use it through the `typednet` crate, which re-exports it
//! and documents the language.
//!
//! The macro is a pipeline: parse (`ast.rs`) → infer shapes and check every layer (`infer.rs`,
//! with the window arithmetic in the `typednet-arith` crate) → generate code (`expand.rs`), or, after an error,
//! the fallback type (`fallback.rs`) next to the `compile_error!`. No stage panics: every
//! mistake is a `syn::Error` with a span, and all of a declaration's errors come in one pass.

#![warn(missing_docs)]

mod ast;
mod expand;
mod fallback;
mod infer;

use proc_macro::TokenStream;
// The window arithmetic is a crate of its own so that the runtime shares it (`typednet::shape`).
use proc_macro2::TokenStream as TokenStream2;
use typednet_arith as arith;

/// Declares networks whose shapes are checked at compile time; documented where it is
/// re-exported, as `typednet::network!`.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    match syn::parse::<ast::Input>(input) {
        Ok(input) => expand_all(&input).into(),
        Err(error) => error.into_compile_error().into(),
    }
}

fn expand_all(input: &ast::Input) -> TokenStream2 {
    // A block that does not parse is reported once, here; its calls expand to nothing more.
    let block_errors: TokenStream2 = input
        .blocks
        .iter()
        .filter_map(|block| block.items.as_ref().err())
        .map(|error| error.to_compile_error())
        .collect();
    let networks: TokenStream2 = input
        .declarations
        .iter()
        .map(|declaration| {
            let header = &declaration.header;
            let result = match &declaration.body {
                Ok(ast::Body::Chain {
                    input: shape,
                    items,
                }) => match (header.autoencoder, &header.gan) {
                    (Some(span), _) => Err(syn::Error::new(
                        span,
                        "`#[autoencoder]` joins an encoder and a decoder declared apart: \
                         `#[autoencoder] pub struct Ae = Encoder -> Decoder;`",
                    )),
                    (None, Some(gan)) => Err(syn::Error::new(
                        gan.span,
                        "`#[gan]` pairs a generator and a discriminator declared apart: \
                         `#[gan] pub struct Gan = Generator -> Discriminator;`",
                    )),
                    (None, None) => infer::infer(shape, items, header.exact_fit, &input.blocks)
                        .map(|net| expand::expand_network(header, &net)),
                },
                Ok(ast::Body::Composition { stages }) => {
                    if header.exact_fit {
                        Err(syn::Error::new(
                            header.name.span(),
                            "`#[exact_fit]` applies to a chain of layers, not to a composition",
                        ))
                    } else if header.autoencoder.is_some() && stages.len() != 2 {
                        Err(syn::Error::new(
                            header.autoencoder.unwrap_or_else(|| header.name.span()),
                            format!(
                                "an autoencoder has two stages, an encoder and a decoder \
                                 (`= Encoder -> Decoder`), not {}",
                                stages.len()
                            ),
                        ))
                    } else if let (Some(gan), Some(_)) = (&header.gan, header.autoencoder) {
                        Err(syn::Error::new(
                            gan.span,
                            "a network is either `#[gan]` or `#[autoencoder]`, not both",
                        ))
                    } else if let Some(gan) = header.gan.as_ref().filter(|_| stages.len() != 2) {
                        Err(syn::Error::new(
                            gan.span,
                            format!(
                                "a GAN has two stages, a generator and a discriminator \
                                 (`= Generator -> Discriminator`), not {}",
                                stages.len()
                            ),
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
        .collect();
    quote::quote!(#block_errors #networks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// Deterministic token soup from the language's own vocabulary: whatever the tokens, the
    /// pipeline returns tokens (an expansion or a `compile_error!`) and never panics.
    #[test]
    fn never_panics_on_arbitrary_tokens() {
        const VOCABULARY: &[&str] = &[
            "pub",
            "struct",
            "Net",
            "Other",
            ":",
            "=",
            "->",
            "[",
            "]",
            "(",
            ")",
            "*",
            ";",
            ",",
            "0",
            "1",
            "2",
            "3",
            "5",
            "28",
            "18446744073709551615",
            "99999999999999999999999",
            "0.5",
            "1.5",
            "linear",
            "conv",
            "maxpool",
            "avgpool",
            "flatten",
            "reshape",
            "dropout",
            "relu",
            "softmax",
            "stride",
            "pad",
            "same",
            "#[exact_fit]",
            "/// doc",
            "r#type",
            "in",
            "fc:",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let length = 1 + (next() % 40) as usize;
            let mut text = String::from("pub struct Net: [1, 28, 28] -> ");
            if next() % 4 == 0 {
                text.clear();
            }
            for _ in 0..length {
                text.push_str(VOCABULARY[(next() % VOCABULARY.len() as u64) as usize]);
                text.push(' ');
            }
            // Unbalanced brackets do not even tokenize; the compiler rejects those before us.
            let Ok(tokens) = TokenStream2::from_str(&text) else {
                continue;
            };
            let outcome = std::panic::catch_unwind(|| match syn::parse2::<ast::Input>(tokens) {
                Ok(input) => expand_all(&input),
                Err(error) => error.into_compile_error(),
            });
            assert!(outcome.is_ok(), "panicked on: {text}");
        }
    }

    #[test]
    fn well_formed_declarations_expand_without_errors() {
        let text =
            "#[exact_fit] pub struct LeNet: [1, 32, 32] -> [conv(6, 5) -> relu -> maxpool(2)] * 1 \
                    -> conv(16, 5) -> relu -> maxpool(2) -> flatten -> linear(120) -> relu \
                    -> linear(84) -> relu -> linear(10);";
        let input: ast::Input = syn::parse2(TokenStream2::from_str(text).unwrap()).unwrap();
        let output = expand_all(&input).to_string();
        assert!(!output.contains("compile_error"), "{output}");
        assert!(output.contains("Conv2d < 1usize , 6usize , 5usize , 5usize"));
        // 400 = 16·5·5 after the second pooling.
        assert!(output.contains("Linear < 400usize , 120usize"));
    }
}
