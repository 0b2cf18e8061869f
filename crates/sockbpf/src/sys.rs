//! The `bpf(2)` commands this crate uses, on a zeroed `union bpf_attr` filled by field
//! offset (the layout is the kernel's stable ABI), and the cgroup id of a directory.

use crate::insn::Insn;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const BPF_MAP_CREATE: i64 = 0;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_ATTACH: i64 = 8;
const BPF_PROG_DETACH: i64 = 9;
const BPF_PROG_QUERY: i64 = 16;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
/// Several programs per hook and cgroup, each cgroup's running after its parent's.
const BPF_F_ALLOW_MULTI: u32 = 2;
/// Size of the verifier log asked for when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// `union bpf_attr`, as bytes (its largest member is well below 128 bytes).
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }

    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn read_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap_or_default())
    }

    fn call(&mut self, cmd: i64) -> io::Result<i64> {
        // SAFETY: `self.0` is a valid, writable `union bpf_attr` of the size passed; every
        // pointer stored in it points to memory the caller keeps alive across the call.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_mut_ptr(), self.0.len()) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn call_fd(&mut self, cmd: i64) -> io::Result<OwnedFd> {
        let fd = self.call(cmd)?;
        // SAFETY: the command returned a new file descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

/// A hash map with 8-byte keys and 4-byte values.
pub fn hash_map(max_entries: u32) -> io::Result<OwnedFd> {
    Attr::new()
        .u32(0, BPF_MAP_TYPE_HASH)
        .u32(4, 8)
        .u32(8, 4)
        .u32(12, max_entries)
        .call_fd(BPF_MAP_CREATE)
}

/// `map[key] = value`, created or replaced.
pub fn map_update(map: BorrowedFd<'_>, key: u64, value: [u8; 4]) -> io::Result<()> {
    Attr::new()
        .u32(0, map.as_raw_fd() as u32)
        .u64(8, &key as *const u64 as u64)
        .u64(16, value.as_ptr() as u64)
        .call(BPF_MAP_UPDATE_ELEM)
        .map(drop)
}

/// Why a program did not load: the error, and the verifier's log when it gave one.
#[derive(Debug)]
pub struct LoadError {
    pub error: io::Error,
    pub log: String,
}

/// Loads a cgroup sock_addr program for `attach_type`. On failure, loads it again with
/// the verifier's log on, to say why.
pub fn prog_load(name: &str, attach_type: u32, insns: &[Insn]) -> Result<OwnedFd, LoadError> {
    let code: Vec<u8> = insns.iter().flat_map(Insn::encode).collect();
    let license = CString::from(c"GPL");
    let mut prog_name = [0u8; 16];
    for (to, from) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *to = from;
    }
    let attr = |log: Option<&mut Vec<u8>>| {
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_CGROUP_SOCK_ADDR)
            .u32(4, insns.len() as u32)
            .u64(8, code.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(68, attach_type);
        a.0[48..64].copy_from_slice(&prog_name);
        if let Some(log) = log {
            a.u32(24, 1).u32(28, log.len() as u32);
            a.u64(32, log.as_mut_ptr() as u64);
        }
        a
    };
    attr(None).call_fd(BPF_PROG_LOAD).or_else(|error| {
        let mut log = vec![0u8; LOG_SIZE];
        let retry = attr(Some(&mut log)).call_fd(BPF_PROG_LOAD);
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let log = String::from_utf8_lossy(&log[..end]).trim().to_string();
        match retry {
            Ok(fd) => Ok(fd),
            Err(_) => Err(LoadError { error, log }),
        }
    })
}

/// Attaches `prog` to the cgroup `cgroup` for `attach_type`, beside other programs there.
pub fn prog_attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    attach_attr(cgroup, prog, attach_type)
        .u32(12, BPF_F_ALLOW_MULTI)
        .call(BPF_PROG_ATTACH)
        .map(drop)
}

/// Detaches `prog` from the cgroup `cgroup`.
pub fn prog_detach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    attach_attr(cgroup, prog, attach_type)
        .call(BPF_PROG_DETACH)
        .map(drop)
}

fn attach_attr(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32) -> Attr {
    let mut a = Attr::new();
    a.u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, attach_type);
    a
}

/// How many programs are attached to the cgroup `cgroup` itself for `attach_type`.
pub fn prog_count(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<u32> {
    let mut a = Attr::new();
    a.u32(0, cgroup.as_raw_fd() as u32).u32(4, attach_type);
    a.call(BPF_PROG_QUERY)?;
    Ok(a.read_u32(24))
}

/// A cgroup v2 directory's id, as `bpf_get_current_cgroup_id` returns it (its inode).
pub fn cgroup_id(dir: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(dir)?.ino())
}
