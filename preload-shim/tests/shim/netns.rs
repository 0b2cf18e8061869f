//! A fresh network namespace for the calling thread, with addresses on its `lo`, and the
//! path of the built shim. Shared by the integration tests and the benchmark.

use std::path::PathBuf;
use std::process::Command;

/// Moves the calling thread (and every process it spawns from now on) into a new, empty
/// network namespace, brings `lo` up and adds `addrs` (CIDR, e.g. `10.0.0.1/8`) to it.
/// The namespace disappears with the thread and its children: nothing on the host changes.
pub fn enter(addrs: &[&str]) {
    // SAFETY: unshare(2) only changes the calling thread's namespaces; no memory is touched.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed: {} (run as root)",
        std::io::Error::last_os_error()
    );
    ip(&["link", "set", "lo", "up"]);
    for addr in addrs {
        ip(&["addr", "add", addr, "dev", "lo"]);
    }
}

/// Runs `ip ARGS` in the current namespace and fails the test on error.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `libp2plab_shim.so` of the same build as the running test or bench executable: cargo
/// builds the library (a dependency of this package's tests and benches) into the same
/// `target/<profile>/deps/` directory.
pub fn shim() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let shim = exe.with_file_name("libp2plab_shim.so");
    assert!(
        shim.exists(),
        "{} missing: cargo builds it with this package",
        shim.display()
    );
    shim
}
