//! `libp2plab_shim.so`: preloaded into an unmodified, dynamically linked program, it makes
//! every socket of that program use the node's virtual address (`BINDIP`, `BINDIP6`).
//!
//! Layout, after Shadow's shim: the decision logic is pure and unit-tested ([`config`],
//! [`decide`], [`addr`], [`iflist`], [`log`], [`fds`], [`diag`]); the interposed C surface
//! ([`interpose`], and [`dlopen`]'s trampoline) is tiny and only glues those to the real
//! libc symbols ([`ffi`]). Nothing allocates on a socket call, and no panic crosses the FFI
//! boundary.

mod addr;
mod config;
mod decide;
mod diag;
mod fds;
mod iflist;
mod log;

#[cfg(all(not(test), target_arch = "x86_64"))]
mod dlopen;
#[cfg(not(test))]
mod ffi;
#[cfg(not(test))]
mod interpose;
