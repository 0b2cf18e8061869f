//! Boots Debian's stock kernel under qemu TCG with a busybox initramfs and runs a shell
//! script in it: a real kernel with `sch_netem` for tests on hosts whose kernel lacks it.
//! Dev-only: used by integration tests as a dev-dependency.
//!
//! ```no_run
//! let out = vmtest::Vm::builder()
//!     .binary("/usr/sbin/tc")
//!     .script("tc qdisc add dev lo root netem delay 50ms && tc qdisc show dev lo")
//!     .run()?;
//! assert_eq!(out.exit_code, 0);
//! # anyhow::Ok(())
//! ```
//!
//! The kernel is the tree `.ci/vmtest-kernel` extracts under `$P2PLAB_VMTEST_CACHE/kernel`
//! (default `/var/cache/p2plab-vmtest/kernel`); without it [`VmBuilder::run`] fails and says
//! to run that script. The guest has 512 MiB of memory and no network device (`-nic none`):
//! nothing it sends can leave it.

mod guest;
mod initramfs;
mod kernel;
mod ping;
mod qemu;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

pub use guest::VmOutput;
use kernel::Kernel;
pub use ping::Rtt;

/// The modules every guest loads: what the netem shaping backend builds its tree from.
pub const MODULES: [&str; 6] = [
    "sch_netem",
    "sch_htb",
    "sch_ingress",
    "cls_u32",
    "act_mirred",
    "ifb",
];

/// Where the guest's busybox comes from (apt package `busybox-static`).
const BUSYBOX: &str = "/bin/busybox";
/// The guest's `/bin/sh` (runs `/init` and the script) is the host's (dash on Debian):
/// busybox `sh` runs its own applets ahead of anything on `PATH`, which would hide the
/// host's `tc` and `ip` behind busybox's.
const SHELL: &str = "/bin/sh";

/// A virtual machine to boot once; see [`VmBuilder`].
pub struct Vm;

impl Vm {
    /// A guest with busybox and [`MODULES`], and a 120 s timeout.
    pub fn builder() -> VmBuilder {
        VmBuilder {
            binaries: Vec::new(),
            files: Vec::new(),
            modules: MODULES.iter().map(|module| module.to_string()).collect(),
            script: String::new(),
            timeout: Duration::from_secs(120),
        }
    }
}

/// What goes into the guest and what it runs.
#[derive(Debug, Clone)]
pub struct VmBuilder {
    binaries: Vec<PathBuf>,
    files: Vec<(PathBuf, PathBuf)>,
    modules: Vec<String>,
    script: String,
    timeout: Duration,
}

impl VmBuilder {
    /// A host binary, as `/usr/local/bin/<its name>` (first on the guest's `PATH`, so ahead
    /// of a busybox applet of the same name such as `tc` or `ip`), with its shared libraries.
    pub fn binary(mut self, host: impl Into<PathBuf>) -> Self {
        self.binaries.push(host.into());
        self
    }

    /// A host file copied to `guest` (an absolute path).
    pub fn file(mut self, host: impl Into<PathBuf>, guest: impl Into<PathBuf>) -> Self {
        self.files.push((host.into(), guest.into()));
        self
    }

    /// One more kernel module to load (with its dependencies) before the script.
    pub fn module(mut self, name: &str) -> Self {
        self.modules.push(name.to_string());
        self
    }

    /// The `sh` script to run as root in `/root`, `lo` up and the modules loaded.
    pub fn script(mut self, script: &str) -> Self {
        self.script = script.to_string();
        self
    }

    /// How long the whole boot may take before qemu is killed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the initramfs, boots, and returns what the script printed and its exit code.
    /// Fails when the kernel is missing, the initramfs cannot be built, the guest's `/init`
    /// fails, or the guest does not power off in time.
    pub fn run(&self) -> Result<VmOutput> {
        let kernel = Kernel::find()?;
        let work = tempfile::tempdir().context("cannot create a temporary directory")?;
        let initrd = work.path().join("initrd.gz");
        self.initramfs(&kernel, &work.path().join("root"))?
            .pack(&initrd)?;
        let console = qemu::Boot {
            vmlinuz: &kernel.vmlinuz,
            initrd: &initrd,
            timeout: self.timeout,
            dir: work.path(),
        }
        .run()?;
        guest::parse_console(&console)
    }

    fn initramfs(&self, kernel: &Kernel, root: &Path) -> Result<initramfs::Initramfs> {
        let tree = initramfs::Initramfs::new(root)?;
        tree.program(Path::new(SHELL), Path::new(SHELL))
            .context("cannot put the host's /bin/sh into the guest")?;
        tree.busybox(Path::new(BUSYBOX)).context(
            "cannot put busybox into the guest: is apt package busybox-static installed?",
        )?;
        for binary in &self.binaries {
            tree.binary(binary)?;
        }
        for (host, guest) in &self.files {
            tree.file(host, guest)?;
        }
        let modules = tree.modules(&kernel.module_files(&self.modules)?)?;
        tree.write(Path::new("/init"), &guest::init_script(&modules), true)?;
        tree.write(Path::new(guest::SCRIPT), &self.script, false)?;
        Ok(tree)
    }
}
