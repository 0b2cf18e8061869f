//! The initramfs: a staging tree in a temporary directory (busybox and its applets, host
//! binaries with the shared libraries `ldd` resolves for them, kernel modules decompressed
//! for busybox `insmod`, plain files), packed as gzip-compressed newc cpio by the `cpio`
//! and `gzip` commands.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::guest::BIN;

/// Where the modules go, decompressed.
const MODULES: &str = "/lib/modules";

/// A root file system being assembled on the host.
pub struct Initramfs {
    root: PathBuf,
}

impl Initramfs {
    /// An empty tree under `root` with the directories `/init` mounts on and `/root`.
    pub fn new(root: &Path) -> Result<Initramfs> {
        for dir in ["proc", "sys", "dev", "run", "tmp", "root"] {
            let dir = root.join(dir);
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(Initramfs {
            root: root.to_path_buf(),
        })
    }

    /// `/bin/busybox` from the host's `busybox` binary, with every applet it lists as a
    /// symlink in `/bin` unless `/bin` already has a program of that name.
    pub fn busybox(&self, host: &Path) -> Result<()> {
        self.program(host, Path::new("/bin/busybox"))?;
        let list = run(Command::new(host).arg("--list"))?;
        for applet in list.lines() {
            let link = self.root.join("bin").join(applet);
            if link.symlink_metadata().is_err() {
                symlink("busybox", &link)
                    .with_context(|| format!("cannot link {}", link.display()))?;
            }
        }
        Ok(())
    }

    /// A host binary as `/usr/local/bin/<its name>`, with its shared libraries.
    pub fn binary(&self, host: &Path) -> Result<()> {
        let name = host
            .file_name()
            .with_context(|| format!("{} names no file", host.display()))?;
        self.program(host, &Path::new(BIN).join(name))
    }

    /// A host ELF file at `guest` and, for a dynamic one, the libraries and loader `ldd`
    /// finds for it, at their host paths.
    pub fn program(&self, host: &Path, guest: &Path) -> Result<()> {
        self.file(host, guest)?;
        for lib in shared_libraries(host)? {
            if !self.path(&lib)?.exists() {
                self.file(&lib, &lib)?;
            }
        }
        Ok(())
    }

    /// A host file at `guest` (an absolute path).
    pub fn file(&self, host: &Path, guest: &Path) -> Result<()> {
        let dst = self.fresh(guest)?;
        fs::copy(host, &dst)
            .with_context(|| format!("cannot copy {} into the guest", host.display()))?;
        Ok(())
    }

    /// `contents` as the file `guest`, executable when `exec`.
    pub fn write(&self, guest: &Path, contents: &str, exec: bool) -> Result<()> {
        let dst = self.fresh(guest)?;
        fs::write(&dst, contents).with_context(|| format!("cannot write {}", dst.display()))?;
        let mode = if exec { 0o755 } else { 0o644 };
        fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot chmod {}", dst.display()))
    }

    /// The kernel module files (`.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`) decompressed into
    /// `/lib/modules`; their guest paths, in the given order.
    pub fn modules(&self, files: &[PathBuf]) -> Result<Vec<String>> {
        files.iter().map(|file| self.module(file)).collect()
    }

    fn module(&self, file: &Path) -> Result<String> {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let Some((stem, compression)) = name.split_once(".ko") else {
            bail!("{} is not a kernel module (.ko)", file.display());
        };
        let guest = format!("{MODULES}/{stem}.ko");
        let dst = self.fresh(Path::new(&guest))?;
        let tool = match compression {
            "" => {
                fs::copy(file, &dst)
                    .with_context(|| format!("cannot copy {} into the guest", file.display()))?;
                return Ok(guest);
            }
            ".xz" => "xz",
            ".zst" => "zstd",
            ".gz" => "gzip",
            other => bail!("{}: unknown module compression {other}", file.display()),
        };
        let out =
            fs::File::create(&dst).with_context(|| format!("cannot create {}", dst.display()))?;
        let status = Command::new(tool)
            .arg("-dc")
            .arg(file)
            .stdout(out)
            .status()
            .with_context(|| format!("cannot run {tool} to unpack {}", file.display()))?;
        if !status.success() {
            bail!("{tool} -dc {} failed: {status}", file.display());
        }
        Ok(guest)
    }

    /// Packs the tree into `out` (gzip-compressed newc cpio, every file owned by root).
    pub fn pack(&self, out: &Path) -> Result<()> {
        let archive =
            fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
        let status = Command::new("bash")
            .args(["-o", "pipefail", "-c"])
            .arg("find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1")
            .current_dir(&self.root)
            .stdout(archive)
            .status()
            .context("cannot run bash to pack the initramfs")?;
        if !status.success() {
            bail!("packing the initramfs with find | cpio | gzip failed ({status}): is apt package cpio installed?");
        }
        Ok(())
    }

    /// The host path of `guest` in the tree, its parent directory created.
    fn path(&self, guest: &Path) -> Result<PathBuf> {
        let rel = guest
            .strip_prefix("/")
            .with_context(|| format!("guest path {} must be absolute", guest.display()))?;
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(path)
    }

    /// Like [`Initramfs::path`], with whatever was there removed: a new file replaces a
    /// busybox applet's symlink instead of writing through it.
    fn fresh(&self, guest: &Path) -> Result<PathBuf> {
        let path = self.path(guest)?;
        match fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("cannot replace {}", path.display()))
            }
            _ => Ok(path),
        }
    }
}

/// The libraries (and the dynamic loader) of a host binary, as `ldd` resolves them; none
/// for a static binary.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ldd")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        if err.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        bail!("ldd {} failed: {}", binary.display(), err.trim());
    }
    parse_ldd(&text).with_context(|| format!("ldd {}", binary.display()))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x..)` and `/lib64/ld-linux-x86-64.so.2
/// (0x..)` give their paths; `linux-vdso.so.1 (0x..)` lives in the kernel.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((lib, target)) => {
                let target = target.split_whitespace().next().unwrap_or_default();
                if !target.starts_with('/') {
                    bail!("shared library {} not found on this host", lib.trim());
                }
                target
            }
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Runs a command and returns its standard output.
fn run(command: &mut Command) -> Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f2)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn compressed_modules_are_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Initramfs::new(&dir.path().join("root")).unwrap();
        for (tool, ext) in [("xz", "xz"), ("gzip", "gz")] {
            let file = dir.path().join(format!("m_{tool}.ko"));
            fs::write(&file, b"\x7fELF module").unwrap();
            let status = Command::new(tool).arg(&file).status().unwrap();
            assert!(status.success(), "{tool} {}", file.display());
            let guest = tree
                .module(&file.with_extension(format!("ko.{ext}")))
                .unwrap();
            assert_eq!(guest, format!("/lib/modules/m_{tool}.ko"));
            let unpacked = fs::read(tree.path(Path::new(&guest)).unwrap()).unwrap();
            assert_eq!(unpacked, b"\x7fELF module");
        }
    }

    #[test]
    fn a_missing_library_is_named() {
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "shared library libfoo.so.1 not found on this host"
        );
    }
}
