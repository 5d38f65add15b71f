//! Compile-fail tests: every shape or syntax mistake in `network!` is a compile error with a
//! span and a readable message. The `.stderr` files were written with `TRYBUILD=overwrite` and
//! reviewed; they are pinned to the toolchain in `rust-toolchain.toml`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/*.rs");
}
