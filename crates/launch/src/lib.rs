//! p2plab process launching: starting unmodified programs under the preload shim
//! (`libp2plab_shim.so`) with their node's virtual address.

pub mod elf;
pub mod wrap;
