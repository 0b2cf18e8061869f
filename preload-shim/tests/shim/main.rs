//! Integration tests of the shim with real programs, each test in a network namespace of
//! its own (see [`netns`]).

mod common;
mod leaks;
mod localhost;
mod log;
mod netns;
mod programs;
mod wrap;
