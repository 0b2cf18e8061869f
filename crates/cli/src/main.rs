//! The `p2plab` binary (work in progress; see issue 2).
fn main() {}
