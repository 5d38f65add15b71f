//! Stage 1: the typed syntax tree of `network!`, parsed from tokens with a span on every node.
//!
//! Parsing recovers at the declaration level: a syntax error inside one declaration is
//! recorded, the rest of that declaration is skipped up to its `;`, and the next one is parsed,
//! so that every declaration still gets its type emitted (see `fallback.rs`).

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, parenthesized, token, Attribute, Ident, LitFloat, LitInt, Token, Visibility};

/// Everything inside one `network! { … }`.
pub struct Input {
    pub declarations: Vec<Declaration>,
    /// `block Name(params) = …;`: chains declared once and used by name in any declaration.
    pub blocks: Vec<BlockDecl>,
}

/// `block Basic(c, s) = conv(c, 3, stride = s, pad = 1) -> relu;` — a chain with parameters,
/// expanded where it is used (`-> Basic(64, 1)`), its parameters replaced by the call's numbers.
pub struct BlockDecl {
    pub name: Ident,
    pub params: Vec<Ident>,
    /// `Err` when the body did not parse; reported once, at the declaration.
    pub items: syn::Result<Vec<Item>>,
}

syn::custom_keyword!(block);
syn::custom_keyword!(shortcut);

/// One declaration; `body` is `Err` when its tokens did not parse.
pub struct Declaration {
    pub header: Header,
    pub body: syn::Result<Body>,
}

/// What comes before the body: attributes, visibility and the name. Always recovered when a
/// declaration has a name, so the network type can be emitted even after a syntax error.
pub struct Header {
    pub docs: Vec<Attribute>,
    pub other_attrs: Vec<Attribute>,
    pub exact_fit: bool,
    /// `#[autoencoder]` on a composition `= Encoder -> Decoder`, with the attribute's span.
    pub autoencoder: Option<proc_macro2::Span>,
    /// `#[gan]` or `#[gan(condition = C)]` on a composition `= Generator -> Discriminator`.
    pub gan: Option<GanAttr>,
    pub vis: Visibility,
    pub name: Ident,
}

/// `#[gan]`, or `#[gan(condition = C)]` for a conditional GAN whose generator takes the noise
/// followed by a `C`-way one-hot condition and whose discriminator takes the sample followed by
/// the same condition.
pub struct GanAttr {
    pub span: Span,
    /// `C` and the span of its literal.
    pub condition: Option<(usize, Span)>,
}

pub enum Body {
    /// `: [shape] -> layer -> …`
    Chain {
        input: ShapeLiteral,
        items: Vec<Item>,
    },
    /// `= First -> Second -> …`
    Composition { stages: Vec<syn::Path> },
}

/// `[784]`, `[28, 28]` (a sequence), `[_, 28]` (of run-time length) or `[3, 32, 32]`.
pub struct ShapeLiteral {
    /// The dimensions given as numbers (after the `_`, if any).
    pub dims: Vec<Number>,
    /// The `_` standing for a sequence length known only at run time.
    pub run_time_steps: Option<Span>,
    pub span: Span,
}

/// The first and last token of a construct, so an error underlines all of it (a
/// `proc_macro2::Span` cannot be joined on stable Rust, but `syn::Error::new_spanned` can
/// cover a range of tokens).
#[derive(Clone, Copy)]
pub struct SpanRange {
    pub start: Span,
    pub end: Span,
}

impl SpanRange {
    pub fn single(span: Span) -> Self {
        SpanRange {
            start: span,
            end: span,
        }
    }

    pub fn error(&self, message: impl std::fmt::Display) -> syn::Error {
        let start = Ident::new("start", self.start);
        let end = Ident::new("end", self.end);
        syn::Error::new_spanned(quote::quote!(#start #end), message)
    }
}

/// An integer literal with its span, so an error can underline it.
#[derive(Clone, Copy)]
pub struct Number {
    pub value: usize,
    pub span: Span,
}

pub enum Item {
    /// A layer, or a call of a block (`Basic(64, 2)`), told apart once the blocks are known.
    Layer(Layer),
    /// `[item -> item] * count`
    Repeat { items: Vec<Item>, count: Number },
    /// `residual(body)` or `residual(body, shortcut = projection)`: the body's output plus the
    /// input (or the projection of the input).
    Residual {
        span: SpanRange,
        body: Branch,
        shortcut: Option<Branch>,
    },
    /// `concat(branch, branch, …)`: every branch applied to the same input, their outputs
    /// joined along channels (images) or features (vectors).
    Concat {
        span: SpanRange,
        branches: Vec<Branch>,
    },
    /// `name: head(chain)`: a side output (GoogLeNet's auxiliary classifiers). The chain reads
    /// the current value; the main chain goes on from that value unchanged.
    Head {
        span: SpanRange,
        name: Option<Ident>,
        body: Branch,
    },
}

/// One chain inside `residual(…)` or `concat(…)`.
pub struct Branch {
    pub items: Vec<Item>,
    pub span: SpanRange,
}

/// One layer as written: `name: kind(args)`.
#[derive(Clone)]
pub struct Layer {
    pub name: Option<Ident>,
    pub kind: Ident,
    pub args: Vec<Arg>,
    /// The whole layer (name, kind and arguments).
    pub span: SpanRange,
    /// The layer's text as declared, e.g. `conv(6, 5, pad = 2)`, for tables and docs.
    pub text: String,
}

/// One argument of a layer: positional or `name = value`.
#[derive(Clone)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: ArgValue,
    pub span: SpanRange,
}

#[derive(Clone)]
pub enum ArgValue {
    Int(Number),
    Float { value: f64, span: Span },
    Pair(Number, Number, SpanRange),
    Word(Ident),
    Bool(bool, Span),
}

impl ArgValue {
    pub fn describe(&self) -> &'static str {
        match self {
            ArgValue::Int(_) => "an integer",
            ArgValue::Float { .. } => "a number",
            ArgValue::Pair(..) => "a pair",
            ArgValue::Word(_) => "a word",
            ArgValue::Bool(..) => "`true` or `false`",
        }
    }
}

/// The layer kinds the language knows, for the "expected one of" message and suggestions.
pub const LAYER_KINDS: &[&str] = &[
    "linear",
    "conv",
    "conv_transpose",
    "locally_connected",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "flatten",
    "reshape",
    "dropout",
    "batchnorm",
    "lrn",
    "rows",
    "columns",
    "rnn",
    "lstm",
    "lstm_no_forget",
    "peephole_lstm",
    "gru",
    "torch_gru",
    "mgu",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "residual",
    "concat",
    "head",
];

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut declarations = Vec::new();
        let mut blocks = Vec::new();
        while !input.is_empty() {
            if starts_block(input) {
                blocks.push(parse_block(input)?);
            } else {
                declarations.push(parse_declaration(input)?);
            }
        }
        if declarations.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "network! needs a declaration, e.g. `pub struct Mlp: [784] -> linear(10);`",
            ));
        }
        Ok(Input {
            declarations,
            blocks,
        })
    }
}

/// Whether the next declaration (after its attributes) is a `block`.
fn starts_block(input: ParseStream) -> bool {
    let fork = input.fork();
    fork.call(Attribute::parse_outer).is_ok() && fork.peek(block)
}

fn parse_block(input: ParseStream) -> syn::Result<BlockDecl> {
    // Doc comments on a block are allowed and, like comments, not emitted anywhere.
    input.call(Attribute::parse_outer)?;
    input.parse::<block>()?;
    let name: Ident = input.parse()?;
    let mut params = Vec::new();
    if input.peek(token::Paren) {
        let content;
        parenthesized!(content in input);
        params = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .collect();
    }
    let items = (|| {
        if !input.peek(Token![=]) {
            return Err(input.error(format!(
                "expected `=` and the block's layers, as in `block {name}(c) = conv(c, 3) -> relu;`"
            )));
        }
        input.parse::<Token![=]>()?;
        let items = parse_chain(input)?;
        expect_semicolon(input)?;
        Ok(items)
    })();
    if items.is_err() {
        skip_past_semicolon(input);
    }
    Ok(BlockDecl {
        name,
        params,
        items,
    })
}

/// `item -> item -> …`, at least one item.
fn parse_chain(input: ParseStream) -> syn::Result<Vec<Item>> {
    let mut items = vec![parse_item(input)?];
    while input.peek(Token![->]) {
        input.parse::<Token![->]>()?;
        items.push(parse_item(input)?);
    }
    Ok(items)
}

/// A chain inside the parentheses of `residual` or `concat`, with its span.
fn parse_branch(input: ParseStream) -> syn::Result<Branch> {
    let start = input.span();
    let items = parse_chain(input)?;
    let end = items.last().map_or(start, item_end);
    Ok(Branch {
        items,
        span: SpanRange { start, end },
    })
}

fn item_end(item: &Item) -> Span {
    match item {
        Item::Layer(layer) => layer.span.end,
        Item::Repeat { count, .. } => count.span,
        Item::Residual { span, .. } | Item::Concat { span, .. } | Item::Head { span, .. } => {
            span.end
        }
    }
}

/// `residual(body)`, `residual(body, shortcut = projection)` or `concat(branch, branch, …)`,
/// after the keyword.
fn parse_branches(input: ParseStream, keyword: &Ident) -> syn::Result<Item> {
    let content;
    let paren = parenthesized!(content in input);
    let span = SpanRange {
        start: keyword.span(),
        end: paren.span.close(),
    };
    if content.is_empty() {
        let example = if keyword == "residual" {
            "residual(conv(64, 3, pad = 1) -> relu)"
        } else {
            "concat(conv(64, 1), conv(32, 3, pad = 1))"
        };
        return Err(span.error(format!("`{keyword}` needs its branches, e.g. `{example}`")));
    }
    if keyword == "residual" {
        let body = parse_branch(&content)?;
        let mut shortcut = None;
        if content.peek(Token![,]) {
            content.parse::<Token![,]>()?;
            if !content.is_empty() {
                content.parse::<shortcut>().map_err(|_| {
                    content.error(
                        "expected `shortcut = …`: a residual has one body and at most one shortcut",
                    )
                })?;
                content.parse::<Token![=]>()?;
                shortcut = Some(parse_branch(&content)?);
                if content.peek(Token![,]) {
                    content.parse::<Token![,]>()?;
                }
            }
        }
        if !content.is_empty() {
            return Err(content.error("expected `->` and a layer, `, shortcut = …` or `)`"));
        }
        return Ok(Item::Residual {
            span,
            body,
            shortcut,
        });
    }
    let mut branches = vec![parse_branch(&content)?];
    while content.peek(Token![,]) {
        content.parse::<Token![,]>()?;
        if content.is_empty() {
            break;
        }
        branches.push(parse_branch(&content)?);
    }
    if !content.is_empty() {
        return Err(content.error("expected `->` and a layer, `,` and another branch, or `)`"));
    }
    Ok(Item::Concat { span, branches })
}

fn parse_declaration(input: ParseStream) -> syn::Result<Declaration> {
    let header = parse_header(input)?;
    let body = parse_body(input, &header.name);
    if body.is_err() {
        skip_past_semicolon(input);
    }
    Ok(Declaration { header, body })
}

fn parse_header(input: ParseStream) -> syn::Result<Header> {
    let attrs = input.call(Attribute::parse_outer)?;
    let mut docs = Vec::new();
    let mut other_attrs = Vec::new();
    let mut exact_fit = false;
    let mut autoencoder = None;
    let mut gan = None;
    for attr in attrs {
        if attr.path().is_ident("doc") {
            docs.push(attr);
        } else if attr.path().is_ident("exact_fit") {
            attr.meta.require_path_only()?;
            exact_fit = true;
        } else if attr.path().is_ident("autoencoder") {
            attr.meta.require_path_only()?;
            autoencoder = Some(attr.path().span());
        } else if attr.path().is_ident("gan") {
            gan = Some(parse_gan_attr(&attr)?);
        } else {
            other_attrs.push(attr);
        }
    }
    let vis: Visibility = input.parse()?;
    if !input.peek(Token![struct]) {
        return Err(input.error("expected `struct`, as in `pub struct Mlp: [784] -> linear(10);`"));
    }
    input.parse::<Token![struct]>()?;
    let name: Ident = input.parse()?;
    Ok(Header {
        docs,
        other_attrs,
        exact_fit,
        autoencoder,
        gan,
        vis,
        name,
    })
}

/// `#[gan]` or `#[gan(condition = 10)]`.
fn parse_gan_attr(attr: &Attribute) -> syn::Result<GanAttr> {
    let span = attr.path().span();
    if let syn::Meta::Path(_) = attr.meta {
        return Ok(GanAttr {
            span,
            condition: None,
        });
    }
    let mut condition = None;
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("condition") {
            let literal: LitInt = meta.value()?.parse()?;
            let classes: usize = literal.base10_parse()?;
            if classes == 0 {
                return Err(syn::Error::new(
                    literal.span(),
                    "a conditional GAN needs at least one condition feature",
                ));
            }
            condition = Some((classes, literal.span()));
            Ok(())
        } else {
            Err(meta.error("expected `condition = C`, as in `#[gan(condition = 10)]`"))
        }
    })?;
    Ok(GanAttr { span, condition })
}

fn parse_body(input: ParseStream, name: &Ident) -> syn::Result<Body> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        let mut stages = vec![input.parse::<syn::Path>()?];
        while input.peek(Token![->]) {
            input.parse::<Token![->]>()?;
            stages.push(input.parse()?);
        }
        if stages.len() < 2 {
            return Err(syn::Error::new(
                stages[0].span(),
                "a composition chains two or more networks: `= Encoder -> Decoder`",
            ));
        }
        expect_semicolon(input)?;
        return Ok(Body::Composition { stages });
    }
    if !input.peek(Token![:]) {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "missing input shape: declare it after the name, e.g. `struct {name}: [784] -> …` or `struct {name}: [3, 32, 32] -> …`"
            ),
        ));
    }
    input.parse::<Token![:]>()?;
    if !input.peek(token::Bracket) {
        return Err(
            input.error("expected the input shape in brackets, e.g. `[784]` or `[1, 28, 28]`")
        );
    }
    let shape_input;
    let bracket = bracketed!(shape_input in input);
    // `[_, F]`: a sequence whose length is known only at run time.
    let run_time_steps = if shape_input.peek(Token![_]) {
        let underscore = shape_input.parse::<Token![_]>()?;
        if !shape_input.is_empty() {
            shape_input.parse::<Token![,]>()?;
        }
        Some(underscore.span)
    } else {
        None
    };
    let dims = Punctuated::<LitInt, Token![,]>::parse_terminated(&shape_input)?
        .into_iter()
        .map(|lit| number(&lit))
        .collect::<syn::Result<Vec<_>>>()?;
    let shape = ShapeLiteral {
        dims,
        run_time_steps,
        span: bracket.span.join(),
    };
    let mut items = Vec::new();
    if input.peek(Token![->]) {
        input.parse::<Token![->]>()?;
        items = parse_chain(input)?;
    }
    if items.is_empty() {
        return Err(syn::Error::new(
            name.span(),
            format!("`{name}` has no layers: continue with `-> layer`, e.g. `-> linear(10)`"),
        ));
    }
    expect_semicolon(input)?;
    Ok(Body::Chain {
        input: shape,
        items,
    })
}

fn expect_semicolon(input: ParseStream) -> syn::Result<()> {
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        Ok(())
    } else if input.is_empty() {
        // The last declaration may leave out its `;`.
        Ok(())
    } else {
        Err(input.error("expected `->` and a layer, or `;` to end the declaration"))
    }
}

fn parse_item(input: ParseStream) -> syn::Result<Item> {
    if input.peek(token::Bracket) {
        let group;
        let bracket = bracketed!(group in input);
        let items = parse_chain(&group)?;
        if !group.is_empty() {
            return Err(group.error("expected `->` and a layer, or `]`"));
        }
        if !input.peek(Token![*]) {
            return Err(syn::Error::new(
                bracket.span.join(),
                "a bracketed group is repeated: write `[…] * N`",
            ));
        }
        input.parse::<Token![*]>()?;
        let count = number(&input.parse::<LitInt>()?)?;
        return Ok(Item::Repeat { items, count });
    }
    let named_head = input.peek(Ident) && input.peek2(Token![:]) && input.peek3(kw::head);
    if named_head || (input.peek(kw::head) && input.peek2(token::Paren)) {
        return parse_head(input);
    }
    if (input.peek(kw::residual) || input.peek(kw::concat)) && input.peek2(token::Paren) {
        let keyword: Ident = input.parse()?;
        return parse_branches(input, &keyword);
    }
    parse_layer(input).map(Item::Layer)
}

mod kw {
    syn::custom_keyword!(residual);
    syn::custom_keyword!(concat);
    syn::custom_keyword!(head);
}

/// `head(chain)` or `name: head(chain)`.
fn parse_head(input: ParseStream) -> syn::Result<Item> {
    let name = if input.peek2(Token![:]) {
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        Some(name)
    } else {
        None
    };
    let keyword: Ident = input.parse()?;
    let content;
    let paren = parenthesized!(content in input);
    let span = SpanRange {
        start: name.as_ref().map_or(keyword.span(), |n| n.span()),
        end: paren.span.close(),
    };
    if content.is_empty() {
        return Err(span.error(
            "`head` needs the layers of its side output, e.g. `aux: head(global_avgpool -> linear(10))`",
        ));
    }
    let body = parse_branch(&content)?;
    if !content.is_empty() {
        return Err(content.error("expected `->` and a layer, or `)`: a head has one chain"));
    }
    Ok(Item::Head { span, name, body })
}

fn parse_layer(input: ParseStream) -> syn::Result<Layer> {
    if !input.peek(Ident) {
        return Err(input.error(format!(
            "expected a layer, one of: {}",
            LAYER_KINDS.join(", ")
        )));
    }
    let first: Ident = input.parse()?;
    let (name, kind) = if input.peek(Token![:]) && !input.peek(Token![::]) {
        input.parse::<Token![:]>()?;
        if !input.peek(Ident) {
            return Err(input.error(format!(
                "expected a layer after `{first}:`, one of: {}",
                LAYER_KINDS.join(", ")
            )));
        }
        (Some(first), input.parse::<Ident>()?)
    } else {
        (None, first)
    };
    let mut span = SpanRange {
        start: name.as_ref().map_or(kind.span(), |n| n.span()),
        end: kind.span(),
    };
    let mut text = kind.to_string();
    let mut args = Vec::new();
    if input.peek(token::Paren) {
        let content;
        let paren = parenthesized!(content in input);
        let parsed = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?;
        text = format!("{kind}({})", args_text(&parsed));
        args = parsed.into_iter().collect();
        span.end = paren.span.close();
    }
    Ok(Layer {
        name,
        kind,
        args,
        span,
        text,
    })
}

/// A layer's text as declared, e.g. `conv(6, 5, pad = 2)` (after a block's parameters are
/// replaced, with the numbers).
pub fn layer_text(layer: &Layer) -> String {
    if layer.args.is_empty() {
        return layer.kind.to_string();
    }
    format!("{}({})", layer.kind, args_text(&layer.args))
}

fn args_text<'a>(args: impl IntoIterator<Item = &'a Arg>) -> String {
    args.into_iter()
        .map(|arg| {
            let value = match &arg.value {
                ArgValue::Int(n) => n.value.to_string(),
                ArgValue::Float { value, .. } => value.to_string(),
                ArgValue::Pair(h, w, _) => format!("({}, {})", h.value, w.value),
                ArgValue::Word(w) => w.to_string(),
                ArgValue::Bool(b, _) => b.to_string(),
            };
            match &arg.name {
                Some(name) => format!("{name} = {value}"),
                None => value,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let start = input.span();
        let name = if input.peek(Ident) && input.peek2(Token![=]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            Some(name)
        } else {
            None
        };
        let value = parse_arg_value(input)?;
        let value_span = match &value {
            ArgValue::Int(n) => SpanRange::single(n.span),
            ArgValue::Float { span, .. } => SpanRange::single(*span),
            ArgValue::Pair(_, _, range) => *range,
            ArgValue::Word(w) => SpanRange::single(w.span()),
            ArgValue::Bool(_, span) => SpanRange::single(*span),
        };
        let span = SpanRange {
            start: if name.is_some() {
                start
            } else {
                value_span.start
            },
            end: value_span.end,
        };
        Ok(Arg { name, value, span })
    }
}

fn parse_arg_value(input: ParseStream) -> syn::Result<ArgValue> {
    let lookahead = input.lookahead1();
    if lookahead.peek(LitInt) {
        Ok(ArgValue::Int(number(&input.parse()?)?))
    } else if lookahead.peek(LitFloat) {
        let lit: LitFloat = input.parse()?;
        Ok(ArgValue::Float {
            value: lit.base10_parse()?,
            span: lit.span(),
        })
    } else if lookahead.peek(token::Paren) {
        let content;
        let paren = parenthesized!(content in input);
        let values = Punctuated::<LitInt, Token![,]>::parse_terminated(&content)?;
        if values.len() != 2 {
            return Err(syn::Error::new(
                paren.span.join(),
                format!(
                    "expected a pair `(height, width)`, found {} value(s)",
                    values.len()
                ),
            ));
        }
        Ok(ArgValue::Pair(
            number(&values[0])?,
            number(&values[1])?,
            SpanRange {
                start: paren.span.open(),
                end: paren.span.close(),
            },
        ))
    } else if lookahead.peek(syn::LitBool) {
        let lit: syn::LitBool = input.parse()?;
        Ok(ArgValue::Bool(lit.value, lit.span))
    } else if lookahead.peek(Ident) {
        Ok(ArgValue::Word(input.parse()?))
    } else {
        Err(lookahead.error())
    }
}

/// Parses a non-negative integer literal that fits a `usize`.
fn number(lit: &LitInt) -> syn::Result<Number> {
    match lit.base10_parse::<usize>() {
        Ok(value) => Ok(Number {
            value,
            span: lit.span(),
        }),
        Err(_) => Err(syn::Error::new(
            lit.span(),
            format!(
                "`{}` is not a size: expected a whole number from 0 to {}",
                lit,
                usize::MAX
            ),
        )),
    }
}

/// Skips tokens up to and including the next top-level `;`, so parsing can go on with the next
/// declaration after a syntax error.
fn skip_past_semicolon(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            rest = next;
            if let TokenTree::Punct(p) = &tt {
                if p.as_char() == ';' {
                    break;
                }
            }
        }
        Ok(((), rest))
    });
}

/// Tokens of a layer kind name, for suggestions.
pub fn closest_kind(found: &str) -> Option<&'static str> {
    LAYER_KINDS
        .iter()
        .map(|k| (edit_distance(found, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Used by tests of the parser: the tokens of a declaration must never make it panic.
#[allow(dead_code)]
pub fn parse_tokens(tokens: TokenStream) -> syn::Result<Input> {
    syn::parse2(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_layer_names() {
        assert_eq!(closest_kind("lienar"), Some("linear"));
        assert_eq!(closest_kind("conv2d"), Some("conv"));
        assert_eq!(closest_kind("maxpol"), Some("maxpool"));
        assert_eq!(closest_kind("banana"), None);
    }
}
