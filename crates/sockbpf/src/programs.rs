//! The programs, one per hook. Each looks up the node address of the calling process's
//! cgroup (`bpf_get_current_cgroup_id`) in the run's map and leaves the call alone when
//! the cgroup is not a node's; otherwise it applies the rule of [`crate::rules::RULES`]
//! for its hook. Every program returns 1 (let the call proceed): they rewrite, never
//! refuse.

use crate::insn::{
    add_imm, and_imm, call, exit, load, load_map_fd, lsh_imm, mov, mov_imm, or_imm, store,
    store_imm, Asm, Cond, Helper, Insn, Listing, Size, FP, R0, R1, R2, R3, R6, R7,
};
use std::fmt;

/// Offsets in `struct bpf_sock_addr`, the programs' context.
mod ctx {
    pub const USER_IP4: i16 = 4;
    pub const USER_IP6: i16 = 8;
    pub const MSG_SRC_IP4: i16 = 40;
    pub const SK: i16 = 64;
}
/// Offsets in `struct bpf_sock`, the socket `ctx->sk` points to.
mod sock {
    pub const SRC_IP4: i16 = 24;
    pub const SRC_IP6: i16 = 28;
    pub const SRC_PORT: i16 = 44;
}

/// `AF_INET` as the low half of a `struct sockaddr_in`'s first 8 bytes (port 0 above it).
const AF_INET: i32 = 2;
/// `AF_INET6` as the first 8 bytes of a `struct sockaddr_in6` (port and flow info 0).
const AF_INET6: i32 = 10;
/// The first octet of every loopback address, as it sits in the low byte of an IPv4
/// address loaded from memory in network byte order on a little-endian machine.
const LOOPBACK_OCTET: i32 = 127;
/// Bytes 8-11 of a v4-mapped IPv6 address (`::ffff:a.b.c.d`) loaded as a little-endian u32.
const MAPPED_PREFIX: i32 = 0xffff_0000_u32 as i32;

/// A cgroup sock_addr hook: which calls run the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Bind4,
    Bind6,
    Connect4,
    Connect6,
    Sendmsg4,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::Bind4,
        Hook::Bind6,
        Hook::Connect4,
        Hook::Connect6,
        Hook::Sendmsg4,
    ];

    /// `enum bpf_attach_type`.
    pub fn attach_type(self) -> u32 {
        match self {
            Hook::Bind4 => 8,
            Hook::Bind6 => 9,
            Hook::Connect4 => 10,
            Hook::Connect6 => 11,
            Hook::Sendmsg4 => 14,
        }
    }

    /// The name the kernel shows (`bpftool cgroup list`), also the program's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Bind4 => "bind4",
            Hook::Bind6 => "bind6",
            Hook::Connect4 => "connect4",
            Hook::Connect6 => "connect6",
            Hook::Sendmsg4 => "sendmsg4",
        }
    }

    /// The program for this hook, reading node addresses from the map `map_fd`.
    pub fn program(self, map_fd: i32) -> Vec<Insn> {
        let mut asm = Asm::new();
        lookup_node(&mut asm, map_fd);
        match self {
            Hook::Bind4 => {
                asm.push([load(Size::W, R1, R6, ctx::USER_IP4)])
                    .jump_if(Cond::Ne, R1, 0, "keep")
                    .push([store(Size::W, R6, ctx::USER_IP4, R7)]);
            }
            Hook::Bind6 => {
                for word in 0..2 {
                    asm.push([load(Size::W, R1, R6, ctx::USER_IP6 + 4 * word)])
                        .jump_if(Cond::Ne, R1, 0, "keep");
                }
                asm.push([load(Size::W, R1, R6, ctx::USER_IP6 + 12)])
                    .jump_if(Cond::Ne, R1, 0, "keep")
                    .push([load(Size::W, R1, R6, ctx::USER_IP6 + 8)])
                    .jump_if(Cond::Eq, R1, 0, "wildcard")
                    .jump32_if(Cond::Ne, R1, MAPPED_PREFIX, "keep")
                    .label("wildcard")
                    .push([
                        store_imm(Size::W, R6, ctx::USER_IP6 + 8, MAPPED_PREFIX),
                        store(Size::W, R6, ctx::USER_IP6 + 12, R7),
                    ]);
            }
            Hook::Connect4 => {
                keep_if_loopback(&mut asm, ctx::USER_IP4);
                asm.push([load(Size::Dw, R2, R6, ctx::SK)])
                    .push([load(Size::W, R1, R2, sock::SRC_IP4)])
                    .jump_if(Cond::Ne, R1, 0, "keep")
                    .push([load(Size::W, R1, R2, sock::SRC_PORT)])
                    .jump_if(Cond::Ne, R1, 0, "keep")
                    // struct sockaddr_in at fp-24: family and port 0, the address, zeros
                    .push([
                        mov(R1, R7),
                        lsh_imm(R1, 32),
                        or_imm(R1, AF_INET),
                        store(Size::Dw, FP, -24, R1),
                        store_imm(Size::Dw, FP, -16, 0),
                    ])
                    .push(bind_to_stack(-24, 16));
            }
            Hook::Connect6 => {
                // only towards a v4-mapped peer that is not loopback
                for word in 0..2 {
                    asm.push([load(Size::W, R1, R6, ctx::USER_IP6 + 4 * word)])
                        .jump_if(Cond::Ne, R1, 0, "keep");
                }
                asm.push([load(Size::W, R1, R6, ctx::USER_IP6 + 8)])
                    .jump32_if(Cond::Ne, R1, MAPPED_PREFIX, "keep");
                keep_if_loopback(&mut asm, ctx::USER_IP6 + 12);
                asm.push([load(Size::Dw, R2, R6, ctx::SK)]);
                for word in 0..4 {
                    asm.push([load(Size::W, R1, R2, sock::SRC_IP6 + 4 * word)])
                        .jump_if(Cond::Ne, R1, 0, "keep");
                }
                asm.push([load(Size::W, R1, R2, sock::SRC_PORT)])
                    .jump_if(Cond::Ne, R1, 0, "keep")
                    // struct sockaddr_in6 at fp-32: family, port 0 and flow info 0, the
                    // address ::ffff:NODE, scope 0
                    .push([
                        store_imm(Size::Dw, FP, -32, AF_INET6),
                        store_imm(Size::Dw, FP, -24, 0),
                        store_imm(Size::W, FP, -16, MAPPED_PREFIX),
                        store(Size::W, FP, -12, R7),
                        store_imm(Size::Dw, FP, -8, 0),
                    ])
                    .push(bind_to_stack(-32, 28));
            }
            Hook::Sendmsg4 => {
                keep_if_loopback(&mut asm, ctx::USER_IP4);
                asm.push([load(Size::W, R1, R6, ctx::MSG_SRC_IP4)])
                    .jump_if(Cond::Ne, R1, 0, "keep")
                    .push([store(Size::W, R6, ctx::MSG_SRC_IP4, R7)]);
            }
        }
        asm.label("keep").push([mov_imm(R0, 1), exit()]);
        asm.finish()
    }
}

/// `r6` = context, `r7` = the node's IPv4 address; to `keep` when the calling process's
/// cgroup is no node's.
fn lookup_node(asm: &mut Asm, map_fd: i32) {
    asm.push([
        mov(R6, R1),
        call(Helper::GetCurrentCgroupId),
        store(Size::Dw, FP, -8, R0),
    ])
    .push(load_map_fd(R1, map_fd))
    .push([mov(R2, FP), add_imm(R2, -8), call(Helper::MapLookupElem)])
    .jump_if(Cond::Eq, R0, 0, "keep")
    .push([load(Size::W, R7, R0, 0)]);
}

/// `bpf_bind(ctx, fp + at, len)`: binds the socket to the address at `fp + at`.
fn bind_to_stack(at: i32, len: i32) -> [Insn; 5] {
    [
        mov(R1, R6),
        mov(R2, FP),
        add_imm(R2, at),
        mov_imm(R3, len),
        call(Helper::Bind),
    ]
}

/// To `keep` when the IPv4 address at `ctx + off` is in 127.0.0.0/8.
fn keep_if_loopback(asm: &mut Asm, off: i16) {
    asm.push([load(Size::W, R1, R6, off), and_imm(R1, 0xff)])
        .jump_if(Cond::Eq, R1, LOOPBACK_OCTET, "keep");
}

/// Every program of a set, printed as BPF assembly under its hook's name.
pub struct Text {
    pub map_fd: i32,
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for hook in Hook::ALL {
            writeln!(f, "{}:", hook.name())?;
            write!(f, "{}", Listing(&hook.program(self.map_fd)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect4_reads_as_bpf_assembly() {
        let text = Listing(&Hook::Connect4.program(3)).to_string();
        assert_eq!(
            text,
            "  0: r6 = r1
  1: call bpf_get_current_cgroup_id
  2: *(u64 *)(r10 -8) = r0
  3: r1 = map[fd 3] ll
  5: r2 = r10
  6: r2 += -8
  7: call bpf_map_lookup_elem
  8: if r0 == 0 goto +19
  9: r7 = *(u32 *)(r0 +0)
 10: r1 = *(u32 *)(r6 +4)
 11: r1 &= 0xff
 12: if r1 == 127 goto +15
 13: r2 = *(u64 *)(r6 +64)
 14: r1 = *(u32 *)(r2 +24)
 15: if r1 != 0 goto +12
 16: r1 = *(u32 *)(r2 +44)
 17: if r1 != 0 goto +10
 18: r1 = r7
 19: r1 <<= 32
 20: r1 |= 2
 21: *(u64 *)(r10 -24) = r1
 22: *(u64 *)(r10 -16) = 0
 23: r1 = r6
 24: r2 = r10
 25: r2 += -24
 26: r3 = 16
 27: call bpf_bind
 28: r0 = 1
 29: exit
"
        );
    }

    #[test]
    fn every_program_ends_by_allowing_the_call() {
        for hook in Hook::ALL {
            let insns = hook.program(3);
            let n = insns.len();
            assert_eq!(&insns[n - 2..], &[mov_imm(R0, 1), exit()], "{hook:?}");
            // every conditional jump lands inside the program
            for (pc, i) in insns.iter().enumerate() {
                let target = pc as isize + 1 + i.off as isize;
                let conditional = matches!(i.code, 0x15 | 0x55 | 0x16 | 0x56);
                assert!(
                    !conditional || (0..n as isize).contains(&target),
                    "{hook:?} {pc}"
                );
            }
        }
        let all = Text { map_fd: 3 }.to_string();
        for hook in Hook::ALL {
            assert!(all.contains(&format!("{}:\n  0: r6 = r1\n", hook.name())));
        }
    }
}
