//! The guest side: the `/init` script the initramfs boots, and the result block it prints
//! on the serial console, read back from the console log.

use anyhow::{bail, Result};

/// Where the test's script lies in the guest.
pub const SCRIPT: &str = "/vmtest/script.sh";
/// Where host binaries go in the guest: first on the guest's `PATH`.
pub const BIN: &str = "/usr/local/bin";

const STDOUT: &str = "@@VMTEST-STDOUT@@";
const STDERR: &str = "@@VMTEST-STDERR@@";
const END: &str = "@@VMTEST-END rc=";
const ERROR: &str = "@@VMTEST-ERROR ";

/// What the test's script left, as seen from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmOutput {
    /// The script's standard output.
    pub stdout: String,
    /// The script's standard error.
    pub stderr: String,
    /// The script's exit status.
    pub exit_code: i32,
    /// The whole serial console, kernel messages included, for diagnosing failures.
    pub console: String,
}

/// `/init`: mounts the pseudo file systems, brings up `lo`, loads `modules` (guest paths,
/// in order), runs the script, prints the result block, powers off. The block's stdout and
/// stderr each get one extra newline so that a last line without one still ends before
/// the next marker; [`parse_console`] takes it off again.
pub fn init_script(modules: &[String]) -> String {
    let mut init = format!(
        r#"#!/bin/sh
export PATH={BIN}:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
echo 1 > /proc/sys/kernel/printk
off() {{ sleep 1; echo o > /proc/sysrq-trigger; sleep 10; }}
fail() {{ echo "{ERROR}$*"; off; }}
ip link set lo up || fail "cannot bring up lo"
"#
    );
    for module in modules {
        init.push_str(&format!(
            "insmod {module} || fail \"insmod {module} failed\"\n"
        ));
    }
    init.push_str(&format!(
        r#"cd /root
sh {SCRIPT} > /vmtest/stdout 2> /vmtest/stderr < /dev/null
rc=$?
echo; echo "{STDOUT}"; cat /vmtest/stdout; echo
echo "{STDERR}"; cat /vmtest/stderr; echo
echo "{END}$rc"
off
"#
    ));
    init
}

/// The result block in the console log of one boot.
pub fn parse_console(console: &str) -> Result<VmOutput> {
    let text = format!("\n{}", console.replace("\r\n", "\n"));
    let line_at = |marker: &str| text.find(&format!("\n{marker}")).map(|at| at + 1);
    let block = || {
        let out = line_at(STDOUT)?;
        let err = out + text[out..].find(&format!("\n{STDERR}\n"))? + 1;
        let end = err + text[err..].find(&format!("\n{END}"))? + 1;
        let rc = text[end + END.len()..]
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        let body = |from: usize, marker: &str, to: usize| {
            text.get(from + marker.len() + 1..to - 1)
                .map(str::to_string)
        };
        Some(VmOutput {
            stdout: body(out, STDOUT, err)?,
            stderr: body(err, STDERR, end)?,
            exit_code: rc,
            console: console.to_string(),
        })
    };
    if let Some(output) = block() {
        return Ok(output);
    }
    if let Some(at) = line_at(ERROR) {
        let line = text[at + ERROR.len()..].lines().next().unwrap_or_default();
        bail!("guest /init failed: {line}");
    }
    bail!(
        "the guest printed no result block (kernel panic or /init died?); console ends with:\n{}",
        tail(console)
    )
}

/// The last lines of a console log, for error messages.
pub fn tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(stdout: &str, stderr: &str, rc: i32) -> String {
        format!("[ 1.0] kernel says hi\r\n{STDOUT}\r\n{stdout}\r\n{STDERR}\r\n{stderr}\r\n{END}{rc}\r\n[ 2.0] reboot: Power down\r\n")
    }

    #[test]
    fn the_block_comes_back_exactly() {
        for (stdout, stderr, rc) in [
            ("a\nb\n", "", 0),
            ("no newline", "oops\n", 3),
            ("", "", 255),
        ] {
            let out = parse_console(&console(stdout, stderr, rc)).unwrap();
            assert_eq!(
                (out.stdout.as_str(), out.stderr.as_str(), out.exit_code),
                (stdout, stderr, rc)
            );
        }
    }

    #[test]
    fn an_init_failure_is_reported() {
        let err =
            parse_console("x\r\n@@VMTEST-ERROR insmod /lib/modules/a.ko failed\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "guest /init failed: insmod /lib/modules/a.ko failed"
        );
    }

    #[test]
    fn a_console_without_block_is_an_error_with_its_tail() {
        let err = parse_console("Kernel panic - not syncing: VFS\r\n").unwrap_err();
        assert!(err.to_string().contains("Kernel panic"), "{err}");
    }
}
