//! The exit status of `p2plab`, as cargo and ripgrep have it: 0 when everything asked for
//! succeeded; 1 when something failed (a process of a run, a run aborted or its network
//! failed, the machine refused a change); 2 for bad input or usage (an input file, a value
//! on the command line such as a loopback node address, a program that cannot run as a
//! node: not found, statically linked, a Go program, not a program; clap's own usage
//! errors exit 2 too); 128 + N after signal N stopped a run, as a shell reports a process
//! that signal ended.

use crate::run::Interrupted;
use launch::wrap::WrapError;

/// An error in what the user gave: a file, a command-line value. Exits 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// `message` as a bad-input error.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(message.into()))
}

/// The exit status for `error`.
pub fn status(error: &anyhow::Error) -> u8 {
    if let Some(i) = error.downcast_ref::<Interrupted>() {
        return 128u8.saturating_add(i.signal as u8);
    }
    let bad_run = matches!(
        error.downcast_ref::<runner::Error>(),
        Some(runner::Error::Experiment(_))
    );
    let bad_program = matches!(
        error.downcast_ref::<WrapError>(),
        Some(
            WrapError::NoCommand
                | WrapError::CommandNotFound(_)
                | WrapError::Static(_)
                | WrapError::Go(_)
                | WrapError::NotProgram(_)
                | WrapError::Loopback(_)
                | WrapError::Ip6Bpf
        )
    );
    if bad_run || bad_program || error.downcast_ref::<BadInput>().is_some() {
        2
    } else {
        1
    }
}
