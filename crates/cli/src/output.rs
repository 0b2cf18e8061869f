//! Writing command output to stdout; a closed pipe (`p2plab plan ... | head`) ends the
//! command quietly instead of panicking. And the verbosity of `-q`/`-v`, set once from the
//! command line: `-q` leaves out progress and warnings, `-v` shows progress as plain lines.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `-q` was given.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Records `-q` and `-v` for the rest of the process.
pub fn set_verbosity(quiet: bool, verbose: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    launch::progress::set_verbose(verbose);
}

/// Whether progress and warnings are left out (`-q`).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints warning `text` on stderr, unless `-q`.
pub fn warn(text: &str) {
    if !quiet() {
        eprintln!("p2plab: warning: {text}");
    }
}

pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints `value` as pretty JSON on stdout (`--json`).
pub fn emit_json(value: &serde_json::Value) -> anyhow::Result<()> {
    emit(&format!("{value:#}\n"))
}
