//! Benchmark: our verifier against a raw `jsonwebtoken::decode`.
fn main() {}
