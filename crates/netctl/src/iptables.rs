//! The one way p2plab runs `iptables` and `iptables-restore`: always with `-w` (wait for
//! the xtables lock instead of failing when another program holds it), output discarded,
//! and a refusal reported as the program's own one-line reason.

use std::io::{self, Write};
use std::process::{Command, Stdio};

/// Why an `iptables` or `iptables-restore` command failed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// The program could not be started (typically: not installed).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// `iptables` or `iptables-restore`.
        program: &'static str,
        /// Why it could not be started.
        source: io::Error,
    },
    /// Its input could not be written or its end awaited.
    #[error("{0}")]
    Io(io::Error),
    /// It ran and refused; its standard error, trimmed.
    #[error("{0}")]
    Refused(String),
}

/// Runs `iptables -w ARGS`.
pub fn iptables(args: &[&str]) -> Result<(), IptablesError> {
    run("iptables", args, None)
}

/// Runs `iptables-restore -w --noflush` with `script` on its standard input.
pub fn iptables_restore(script: &str) -> Result<(), IptablesError> {
    run("iptables-restore", &["--noflush"], Some(script))
}

fn run(program: &'static str, args: &[&str], input: Option<&str>) -> Result<(), IptablesError> {
    let mut child = Command::new(program)
        .arg("-w")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| IptablesError::Spawn { program, source })?;
    if let (Some(script), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(script.as_bytes())
            .map_err(IptablesError::Io)?;
    }
    let out = child.wait_with_output().map_err(IptablesError::Io)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(IptablesError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_cannot_start_is_named() {
        let e = run("/no/such/iptables", &[], None).unwrap_err();
        assert!(matches!(e, IptablesError::Spawn { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("cannot run /no/such/iptables: "),
            "{e}"
        );
    }

    // Perl (essential on Debian) stands in for iptables: `perl -w` is perl with warnings.
    #[test]
    fn a_refusal_carries_the_programs_reason_and_input_reaches_it() {
        let refuse = r#"my $l = <STDIN>; chomp $l; print STDERR "\n no: $l @ARGV \n"; exit 1"#;
        let e = run("perl", &["-e", refuse, "add", "X"], Some("rule\n")).unwrap_err();
        assert!(matches!(e, IptablesError::Refused(_)), "{e:?}");
        assert_eq!(e.to_string(), "no: rule add X");
        assert!(run("perl", &["-e", "exit 0"], None).is_ok());
    }
}
