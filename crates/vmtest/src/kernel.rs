//! The guest kernel: the tree `.ci/vmtest-kernel` extracts from Debian's `linux-image-<ver>`
//! package (`boot/vmlinuz-<ver>`, `lib/modules/<ver>/`), and module lookup in its
//! `modules.dep`, dependencies first.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Where `.ci/vmtest-kernel` keeps its download unless `P2PLAB_VMTEST_CACHE` says otherwise.
const DEFAULT_CACHE: &str = "/var/cache/p2plab-vmtest";

/// An extracted kernel package.
#[derive(Debug)]
pub struct Kernel {
    /// The bootable image.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<ver>`, holding `modules.dep`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The kernel under `$P2PLAB_VMTEST_CACHE/kernel` (default `/var/cache/p2plab-vmtest`).
    pub fn find() -> Result<Kernel> {
        let cache = std::env::var_os("P2PLAB_VMTEST_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE));
        let tree = cache.join("kernel");
        let boot = tree.join("boot");
        if !boot.is_dir() {
            bail!(
                "no test kernel in {}: run .ci/vmtest-kernel",
                tree.display()
            );
        }
        let read = || format!("cannot read {}", boot.display());
        let mut images = Vec::new();
        for entry in std::fs::read_dir(&boot).with_context(read)? {
            let name = entry.with_context(read)?.file_name();
            if let Some(ver) = name.to_string_lossy().strip_prefix("vmlinuz-") {
                images.push(ver.to_string());
            }
        }
        let [ver] = images.as_slice() else {
            bail!(
                "expected one boot/vmlinuz-* in {}, found {}: run .ci/vmtest-kernel",
                tree.display(),
                images.len()
            );
        };
        let modules = ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|dir| tree.join(dir).join(ver))
            .find(|dir| dir.join("modules.dep").is_file())
            .with_context(|| {
                format!(
                    "no modules.dep for kernel {ver} in {}: run .ci/vmtest-kernel",
                    tree.display()
                )
            })?;
        Ok(Kernel {
            vmlinuz: tree.join("boot").join(format!("vmlinuz-{ver}")),
            modules,
        })
    }

    /// The files of the named modules and of everything they depend on, each after its
    /// dependencies, so that `insmod` in this order succeeds.
    pub fn module_files(&self, names: &[String]) -> Result<Vec<PathBuf>> {
        let dep_file = self.modules.join("modules.dep");
        let text = std::fs::read_to_string(&dep_file)
            .with_context(|| format!("cannot read {}", dep_file.display()))?;
        let order = load_order(&ModuleDeps::parse(&text), names).with_context(|| {
            format!("cannot resolve kernel modules from {}", dep_file.display())
        })?;
        Ok(order
            .into_iter()
            .map(|rel| self.modules.join(rel))
            .collect())
    }
}

/// `modules.dep`: each module's file (relative to `lib/modules/<ver>`) and its dependencies'.
struct ModuleDeps<'a> {
    by_name: HashMap<String, (&'a str, Vec<&'a str>)>,
}

impl<'a> ModuleDeps<'a> {
    fn parse(text: &'a str) -> ModuleDeps<'a> {
        let by_name = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(file, deps)| (module_name(file), (file, deps.split_whitespace().collect())))
            .collect();
        ModuleDeps { by_name }
    }
}

/// `kernel/net/sched/sch_netem.ko.xz` -> `sch_netem` (modprobe treats `-` and `_` alike).
fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split_once(".ko").map_or(base, |(stem, _)| stem);
    stem.replace('-', "_")
}

/// Depth-first: every dependency before its user, each file once.
fn load_order<'a>(deps: &ModuleDeps<'a>, names: &[String]) -> Result<Vec<&'a str>> {
    fn visit<'a>(
        deps: &ModuleDeps<'a>,
        name: &str,
        seen: &mut HashSet<String>,
        order: &mut Vec<&'a str>,
    ) -> Result<()> {
        let name = module_name(name);
        if !seen.insert(name.clone()) {
            return Ok(());
        }
        let Some((file, needs)) = deps.by_name.get(&name) else {
            bail!("kernel module {name} not found (built in, or not built for this kernel?)");
        };
        for need in needs {
            visit(deps, need, seen, order)?;
        }
        order.push(file);
        Ok(())
    }
    let (mut seen, mut order) = (HashSet::new(), Vec::new());
    for name in names {
        visit(deps, name, &mut seen, &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/net/sched/sch_netem.ko.xz:
kernel/net/sched/act_mirred.ko.zst: kernel/net/sched/act_base.ko.zst kernel/lib/lib-x.ko.zst
kernel/net/sched/act_base.ko.zst: kernel/lib/lib-x.ko.zst
kernel/lib/lib-x.ko.zst:
";

    #[test]
    fn dependencies_come_first_and_once() {
        let names = [
            "act_mirred".to_string(),
            "sch-netem".to_string(),
            "lib_x".to_string(),
        ];
        let order = load_order(&ModuleDeps::parse(DEP), &names).unwrap();
        assert_eq!(
            order,
            [
                "kernel/lib/lib-x.ko.zst",
                "kernel/net/sched/act_base.ko.zst",
                "kernel/net/sched/act_mirred.ko.zst",
                "kernel/net/sched/sch_netem.ko.xz",
            ]
        );
    }

    #[test]
    fn an_unknown_module_is_named() {
        let err = load_order(&ModuleDeps::parse(DEP), &["sch_cake".to_string()]).unwrap_err();
        assert!(err.to_string().contains("sch_cake"), "{err}");
    }
}
