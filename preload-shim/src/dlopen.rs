//! `dlopen` without `RTLD_DEEPBIND`, on x86_64. A library loaded with it looks up its
//! symbols in its own dependencies first, libc among them, before the preloaded shim: its
//! sockets would escape (PHP loads its extensions so). The interposed `dlopen` is a
//! trampoline that asks [`call`] for the real `dlopen` and the flags, then jumps into libc's
//! `dlopen` rather than calling it, so that libc still sees the program's call site: it
//! finds the caller's `RUNPATH` and expands `$ORIGIN` from the return address.

use crate::ffi::{config, log, Real};
use libc::{c_char, c_int, c_uint, c_void};

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;

// SAFETY: the type is the C prototype of dlopen(3).
static DLOPEN: Real<DlopenFn> = unsafe { Real::new(c"dlopen") };

/// What the trampoline jumps to, and with which flags (returned in `rax` and `rdx`).
#[repr(C)]
struct Call {
    real: usize,
    flags: usize,
}

/// For `dlopen(_, flags)`: the real `dlopen`, and the flags without `RTLD_DEEPBIND` when
/// the shim is active.
extern "C" fn call(flags: c_int) -> Call {
    let active = config().ips.active();
    if active && flags & libc::RTLD_DEEPBIND != 0 {
        log(format_args!("dlopen: RTLD_DEEPBIND cleared"));
    }
    let flags = match active {
        true => flags & !libc::RTLD_DEEPBIND,
        false => flags,
    };
    let fallback: DlopenFn = no_dlopen;
    Call {
        real: DLOPEN.get().unwrap_or(fallback) as usize,
        flags: flags as c_uint as usize,
    }
}

/// `dlopen` when libc has none: fails.
extern "C" fn no_dlopen(_: *const c_char, _: c_int) -> *mut c_void {
    std::ptr::null_mut()
}

/// `dlopen`: libc's, without `RTLD_DEEPBIND` (see the module's documentation).
///
/// # Safety
/// As dlopen(3).
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlopen(file: *const c_char, flags: c_int) -> *mut c_void {
    std::arch::naked_asm!(
        // Keep the arguments, with the stack 16-byte aligned for the call.
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "mov edi, esi",
        "call {call}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        // The real dlopen came back in rax, the flags to give it in rdx.
        "mov esi, edx",
        "jmp rax",
        call = sym call,
    )
}
