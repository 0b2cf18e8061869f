//! Writing command output to stdout; a closed pipe (`p2plab plan ... | head`) ends the
//! command quietly instead of panicking.

use std::io::{ErrorKind, Write};

pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
