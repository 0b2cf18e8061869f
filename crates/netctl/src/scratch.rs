//! Scratch network namespaces: run a closure on a thread that has its own, new network
//! namespace, which disappears when the thread ends. Netlink sockets opened and processes
//! spawned from inside the closure live in that namespace. Used by the capability probe
//! and by tests, which must never touch the host's own interfaces.

use nix::sched::{unshare, CloneFlags};
use std::io;

/// Runs `f` in a fresh network namespace (needs CAP_SYS_ADMIN) and returns its result.
/// A panic in `f` is propagated.
pub fn in_new_netns<T, F>(f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = std::thread::spawn(move || {
        // Changes only the network namespace of this new thread.
        unshare(CloneFlags::CLONE_NEWNET)?;
        Ok(f())
    });
    match handle.join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}
