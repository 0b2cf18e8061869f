//! One boot: `qemu-system-x86_64` under TCG without any network device, its serial console
//! captured to a file, killed by its pid when it outlives the timeout.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::guest::tail;

const CONSOLE: &str = "console.log";
const STDERR: &str = "qemu.stderr";

/// What one boot needs.
pub struct Boot<'a> {
    pub vmlinuz: &'a Path,
    pub initrd: &'a Path,
    pub timeout: Duration,
    /// Where qemu's console (`console.log`) and error output (`qemu.stderr`) go.
    pub dir: &'a Path,
}

impl Boot<'_> {
    /// Boots, waits for the guest to power off, and returns the console log.
    pub fn run(&self) -> Result<String> {
        let create = |name: &str| {
            let path = self.dir.join(name);
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))
        };
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-nographic", "-no-reboot", "-nic", "none"])
            .args(["-m", "512"])
            .arg("-kernel")
            .arg(self.vmlinuz)
            .arg("-initrd")
            .arg(self.initrd)
            .args(["-append", "console=ttyS0 quiet panic=-1"])
            .stdin(Stdio::null())
            .stdout(create(CONSOLE)?)
            .stderr(create(STDERR)?)
            .spawn()
            .context(
                "cannot start qemu-system-x86_64: is apt package qemu-system-x86 installed?",
            )?;
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().context("waiting for qemu")? {
                break status;
            }
            if start.elapsed() > self.timeout {
                // Kills exactly this pid (SIGKILL), then reaps it.
                child.kill().context("cannot kill qemu")?;
                child.wait().context("waiting for the killed qemu")?;
                bail!(
                    "the guest did not power off within {:?}: killed qemu (pid {}); console ends with:\n{}",
                    self.timeout,
                    child.id(),
                    tail(&self.read(CONSOLE)?)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            bail!(
                "qemu-system-x86_64 failed ({status}): {}",
                self.read(STDERR)?.trim()
            );
        }
        self.read(CONSOLE)
    }

    fn read(&self, name: &str) -> Result<String> {
        let path = self.dir.join(name);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
