//! The netem backend on a real stock kernel: this machine's kernel has no `sch_netem`, so
//! Debian's kernel (the versioned package `linux-image-amd64` depends on, fetched with
//! `apt-get download` and unpacked with `dpkg-deb -x`) boots under `qemu-system-x86_64
//! -accel tcg` with a busybox initramfs holding `p2plab`, `tc`, their libraries and the
//! modules netem shaping needs. Inside, `p2plab doctor` and `p2plab up` (auto) pick netem and bring up two groups
//! with access latency and a group delay; the guest prints the tc tree and the RTT of a
//! ping between the groups; `p2plab change` gives the pair a->b a new delay and node a-1 a
//! new latency (the RTT follows), cuts a-1 off (no reply) and restores it; then
//! `p2plab down` must leave no qdisc behind.
//!
//! Needs: qemu-system-x86, busybox-static, cpio, dpkg, binutils (strip), network access
//! to the Debian archive the first time (the kernel is cached under the target dir).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_p2plab");
const MODULES: [&str; 6] = [
    "sch_htb",
    "sch_netem",
    "sch_ingress",
    "cls_u32",
    "act_mirred",
    "ifb",
];
/// One way: 5 ms access latency at each end + 20 ms between the groups.
const ONE_WAY_MS: f64 = 30.0;
/// After `change set_delay from=a to=b delay=60ms` and `change set_link a-1 latency=10ms`:
/// a-1 -> b-1 10 + 60 + 5, back 5 + 20 + 10.
const CHANGED_RTT_MS: f64 = 110.0;

const TOPOLOGY: &str = "address_plan:
  base: 10.60.0.0/16
profiles:
  p:
    up: 2mbit
    down: 8mbit
    latency: 5ms
    loss: 0%
    queue: 100
defaults:
  profile: p
  delay: 20ms
groups:
  - name: a
    nodes: 2
  - name: b
    nodes: 2
";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Debian's current amd64 kernel package, unpacked (cached across runs).
fn kernel(cache: &Path) -> PathBuf {
    let root = cache.join("root");
    if root.join("boot").exists() {
        return root;
    }
    let deps = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
    let pkg = deps
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
        .map(|v| format!("linux-image-{v}"))
        .expect("apt-cache knows linux-image-amd64 (run apt-get update)");
    std::fs::create_dir_all(cache).unwrap();
    run(Command::new("apt-get")
        .args(["download", &pkg])
        .current_dir(cache));
    let deb = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    root
}

/// Copies `bin` and the shared libraries `ldd` lists into `dest`, keeping their paths.
fn copy_with_libs(bin: &Path, dest: &Path, name: &str) {
    let target = dest.join("bin").join(name);
    std::fs::copy(bin, &target).unwrap();
    run(Command::new("strip").arg(&target));
    for line in run(Command::new("ldd").arg(bin)).lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            let to = dest.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(p, &to).unwrap();
        }
    }
}

fn initramfs(kernel_root: &Path, work: &Path) -> PathBuf {
    let dir = work.join("initramfs");
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "modules", "proc", "sys", "run", "tmp", "dev"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "mount", "insmod", "ip", "ping", "grep", "echo", "cat", "sleep", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    copy_with_libs(Path::new(BIN), &dir, "p2plab");
    copy_with_libs(Path::new("/usr/sbin/tc"), &dir, "tc");
    let mods = std::fs::read_dir(kernel_root.join("lib/modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for m in MODULES {
        let found = run(Command::new("find")
            .arg(&mods)
            .arg("-name")
            .arg(format!("{m}.ko*")));
        let src = PathBuf::from(
            found
                .lines()
                .next()
                .unwrap_or_else(|| panic!("module {m} not in the kernel package")),
        );
        let to = dir.join("modules").join(format!("{m}.ko"));
        if src.extension().is_some_and(|x| x == "xz") {
            let raw = Command::new("xz").arg("-dc").arg(&src).output().unwrap();
            assert!(raw.status.success(), "xz -dc {}", src.display());
            std::fs::write(&to, raw.stdout).unwrap();
        } else {
            std::fs::copy(&src, &to).unwrap();
        }
    }
    std::fs::write(dir.join("topo.yaml"), TOPOLOGY).unwrap();
    let mods: Vec<String> = MODULES
        .iter()
        .map(|m| format!("insmod /modules/{m}.ko"))
        .collect();
    let init = format!(
        "#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmpfs /run; mount -t devtmpfs dev /dev
{}
ip link set lo up
echo DOCTOR $(p2plab doctor | grep -c 'will use the netem backend')
p2plab up /topo.yaml && echo P2PLAB-UP-OK
echo BACKEND $(p2plab status | grep default)
echo NETEM-QDISCS $(tc qdisc show | grep -c netem)
echo HTB-CLASSES $(tc class show dev p2p0u0 | grep -c htb) $(tc class show dev lo | grep -c htb)
ping -c 5 -I 10.60.0.1 10.60.0.5 | grep round-trip
p2plab change set_delay from=a to=b delay=60ms && p2plab change set_link a-1 latency=10ms && echo P2PLAB-CHANGE-OK
echo CHANGED $(ping -c 5 -I 10.60.0.1 10.60.0.5 | grep round-trip)
p2plab change cut a-1 && echo CUT $(ping -c 3 -W 1 -I 10.60.0.1 10.60.0.5 | grep -c 'bytes from')
p2plab change restore a-1 && echo RESTORED $(ping -c 3 -I 10.60.0.1 10.60.0.5 | grep -c 'bytes from')
p2plab down && echo P2PLAB-DOWN-OK
echo LEFT $(tc qdisc show | grep -c -e htb -e netem -e clsact) $(ip link | grep -c p2p)
echo o > /proc/sysrq-trigger
sleep 5
",
        mods.join("\n")
    );
    std::fs::write(dir.join("init"), init).unwrap();
    std::fs::set_permissions(
        dir.join("init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let img = work.join("initrd.gz");
    run(Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find . | cpio -o -H newc --quiet | gzip -1 > {}",
            img.display()
        ))
        .current_dir(&dir));
    img
}

#[test]
fn netem_backend_under_qemu_has_the_tree_and_the_delay() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("netem-qemu");
    let root = kernel(&work.join("kernel"));
    let vmlinuz = std::fs::read_dir(root.join("boot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vmlinuz")
        })
        .unwrap();
    let initrd = initramfs(&root, &work);
    let out = Command::new("timeout")
        .args([
            "180",
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "512",
            "-nographic",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |key: &str| {
        console
            .lines()
            .find(|l| l.contains(key))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    assert!(
        console.contains("P2PLAB-UP-OK"),
        "up failed in the guest:\n{console}"
    );
    // 4 nodes x 2 directions of per-node netem leaves + 2 group pairs (a->b, b->a); the four
    // nodes share one /24, so one upload IFB holds all 4 classes; lo holds the 2 pair classes
    assert_eq!(line("NETEM-QDISCS"), "NETEM-QDISCS 10", "{console}");
    assert_eq!(line("HTB-CLASSES"), "HTB-CLASSES 4 2", "{console}");
    let avg_rtt = |line: &str| -> f64 {
        line.split('=')
            .nth(1)
            .and_then(|v| v.trim().split('/').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no RTT in: {line}\n{console}"))
    };
    for (key, want) in [
        ("round-trip", 2.0 * ONE_WAY_MS),
        ("CHANGED ", CHANGED_RTT_MS),
    ] {
        let avg = avg_rtt(&line(key));
        eprintln!("guest RTT avg {avg} ms (configured {want} ms)");
        assert!(avg >= want, "RTT {avg} ms below the configured {want} ms");
        assert!(
            avg < want + 100.0,
            "RTT {avg} ms far above the configured {want} ms"
        );
    }
    assert!(console.contains("P2PLAB-CHANGE-OK"), "{console}");
    assert_eq!(line("CUT"), "CUT 0", "{console}");
    assert_eq!(line("RESTORED"), "RESTORED 3", "{console}");
    assert!(console.contains("P2PLAB-DOWN-OK"), "{console}");
    assert_eq!(line("LEFT"), "LEFT 0 0", "{console}");
}
