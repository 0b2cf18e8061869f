//! BPF instructions: their 8-byte encoding for the kernel and their text as BPF assembly
//! (the pseudo-C the kernel's verifier log and LLVM print), and a tiny assembler with
//! labels so that programs name their jump targets instead of counting instructions.

use std::fmt;

/// A register, `r0` (return value) to `r10` (frame pointer, read-only).
pub type Reg = u8;
pub const R0: Reg = 0;
pub const R1: Reg = 1;
pub const R2: Reg = 2;
pub const R3: Reg = 3;
pub const R6: Reg = 6;
pub const R7: Reg = 7;
/// The frame pointer: the stack is the 512 bytes below it.
pub const FP: Reg = 10;

/// Memory access sizes, as encoded in bits 3-4 of the opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    W = 0x00,
    Dw = 0x18,
}

impl Size {
    fn c_type(self) -> &'static str {
        match self {
            Size::W => "u32",
            Size::Dw => "u64",
        }
    }
}

/// Kernel helpers the programs call, by their number in `enum bpf_func_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    MapLookupElem = 1,
    Bind = 64,
    GetCurrentCgroupId = 80,
}

impl Helper {
    fn from_id(id: i32) -> Option<Helper> {
        [
            Helper::MapLookupElem,
            Helper::Bind,
            Helper::GetCurrentCgroupId,
        ]
        .into_iter()
        .find(|h| *h as i32 == id)
    }

    fn name(self) -> &'static str {
        match self {
            Helper::MapLookupElem => "bpf_map_lookup_elem",
            Helper::Bind => "bpf_bind",
            Helper::GetCurrentCgroupId => "bpf_get_current_cgroup_id",
        }
    }
}

/// Jump conditions (`BPF_JMP` operations against an immediate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Ne = 0x50,
}

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_JMP: u8 = 0x05;
/// Jumps comparing the lower 32 bits of a register, against an immediate taken as 32 bits.
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const ALU_ADD: u8 = 0x00;
const ALU_OR: u8 = 0x40;
const ALU_LSH: u8 = 0x60;
const ALU_AND: u8 = 0x50;
const ALU_MOV: u8 = 0xb0;
const JMP_CALL: u8 = 0x80;
const JMP_EXIT: u8 = 0x90;
/// `src` of a 64-bit immediate load whose immediate is a map's file descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// One instruction slot (a 64-bit immediate load takes two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: Reg,
    pub src: Reg,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The kernel's `struct bpf_insn`, little-endian (this crate is for x86-64 and arm64).
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// `dst = imm`
pub const fn mov_imm(dst: Reg, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}
/// `dst = src`
pub const fn mov(dst: Reg, src: Reg) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
}
/// `dst += imm`
pub const fn add_imm(dst: Reg, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm)
}
/// `dst &= imm`
pub const fn and_imm(dst: Reg, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_AND | SRC_K, dst, 0, 0, imm)
}
/// `dst |= imm`
pub const fn or_imm(dst: Reg, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_OR | SRC_K, dst, 0, 0, imm)
}
/// `dst <<= imm`
pub const fn lsh_imm(dst: Reg, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_LSH | SRC_K, dst, 0, 0, imm)
}
/// `dst = *(size *)(src + off)`
pub const fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEM | size as u8, dst, src, off, 0)
}
/// `*(size *)(dst + off) = src`
pub const fn store(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
    Insn::new(CLASS_STX | MODE_MEM | size as u8, dst, src, off, 0)
}
/// `*(size *)(dst + off) = imm`
pub const fn store_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
    Insn::new(CLASS_ST | MODE_MEM | size as u8, dst, 0, off, imm)
}
/// `call helper`
pub const fn call(helper: Helper) -> Insn {
    Insn::new(CLASS_JMP | JMP_CALL, 0, 0, 0, helper as i32)
}
/// `exit` (returns `r0`)
pub const fn exit() -> Insn {
    Insn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0)
}
/// `dst = map` (by file descriptor): two slots, the second holding the upper 32 bits.
pub const fn load_map_fd(dst: Reg, fd: i32) -> [Insn; 2] {
    [
        Insn::new(
            CLASS_LD | MODE_IMM | Size::Dw as u8,
            dst,
            PSEUDO_MAP_FD,
            0,
            fd,
        ),
        Insn::new(0, 0, 0, 0, 0),
    ]
}
/// `if dst <cond> imm goto pc + 1 + off`
const fn jump_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
    Insn::new(CLASS_JMP | cond as u8 | SRC_K, dst, 0, off, imm)
}

/// `if (u32)dst <cond> (u32)imm goto pc + 1 + off`
const fn jump32_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
    Insn::new(CLASS_JMP32 | cond as u8 | SRC_K, dst, 0, off, imm)
}

/// Builds a program with named jump targets.
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// (slot of a jump, label it goes to)
    jumps: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// Appends instructions.
    pub fn push(&mut self, insns: impl IntoIterator<Item = Insn>) -> &mut Asm {
        self.insns.extend(insns);
        self
    }

    /// `if dst <cond> imm goto label`
    pub fn jump_if(&mut self, cond: Cond, dst: Reg, imm: i32, label: &'static str) -> &mut Asm {
        self.jumps.push((self.insns.len(), label));
        self.push([jump_imm(cond, dst, imm, 0)])
    }

    /// `if (u32)dst <cond> (u32)imm goto label`: for an immediate with its top bit set,
    /// which [`Asm::jump_if`] would compare sign-extended to 64 bits.
    pub fn jump32_if(&mut self, cond: Cond, dst: Reg, imm: i32, label: &'static str) -> &mut Asm {
        self.jumps.push((self.insns.len(), label));
        self.push([jump32_imm(cond, dst, imm, 0)])
    }

    /// Puts `label` at the next instruction.
    pub fn label(&mut self, label: &'static str) -> &mut Asm {
        self.labels.push((label, self.insns.len()));
        self
    }

    /// The instructions, jumps resolved. A jump to a label never placed is a bug in the
    /// program's source, so it panics.
    pub fn finish(&self) -> Vec<Insn> {
        let mut out = self.insns.clone();
        for &(at, label) in &self.jumps {
            let (_, target) = self
                .labels
                .iter()
                .find(|(l, _)| *l == label)
                .unwrap_or_else(|| panic!("jump to label {label} that is never placed"));
            out[at].off = (*target as isize - at as isize - 1) as i16;
        }
        out
    }
}

fn is_wide(insn: &Insn) -> bool {
    insn.code == CLASS_LD | MODE_IMM | Size::Dw as u8
}

/// A program's instructions printed as BPF assembly, one numbered line per instruction.
pub struct Listing<'a>(pub &'a [Insn]);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pc = 0;
        while let Some(insn) = self.0.get(pc) {
            write!(f, "{pc:>3}: ")?;
            fmt_insn(f, insn)?;
            writeln!(f)?;
            pc += if is_wide(insn) { 2 } else { 1 };
        }
        Ok(())
    }
}

fn fmt_insn(f: &mut fmt::Formatter<'_>, i: &Insn) -> fmt::Result {
    let (dst, src, off, imm) = (i.dst, i.src, i.off, i.imm);
    let size = |code: u8| {
        if code & 0x18 == Size::Dw as u8 {
            Size::Dw
        } else {
            Size::W
        }
    };
    match i.code {
        c if c == CLASS_ALU64 | ALU_MOV | SRC_K => write!(f, "r{dst} = {imm}"),
        c if c == CLASS_ALU64 | ALU_MOV | SRC_X => write!(f, "r{dst} = r{src}"),
        c if c == CLASS_ALU64 | ALU_ADD | SRC_K => write!(f, "r{dst} += {imm}"),
        c if c == CLASS_ALU64 | ALU_AND | SRC_K => write!(f, "r{dst} &= {imm:#x}"),
        c if c == CLASS_ALU64 | ALU_OR | SRC_K => write!(f, "r{dst} |= {imm}"),
        c if c == CLASS_ALU64 | ALU_LSH | SRC_K => write!(f, "r{dst} <<= {imm}"),
        c if c & 0xe7 == CLASS_LDX | MODE_MEM => {
            write!(f, "r{dst} = *({} *)(r{src} {off:+})", size(c).c_type())
        }
        c if c & 0xe7 == CLASS_STX | MODE_MEM => {
            write!(f, "*({} *)(r{dst} {off:+}) = r{src}", size(c).c_type())
        }
        c if c & 0xe7 == CLASS_ST | MODE_MEM => {
            write!(f, "*({} *)(r{dst} {off:+}) = {imm}", size(c).c_type())
        }
        c if c == CLASS_JMP | JMP_CALL => match Helper::from_id(imm) {
            Some(h) => write!(f, "call {}", h.name()),
            None => write!(f, "call #{imm}"),
        },
        c if c == CLASS_JMP | JMP_EXIT => f.write_str("exit"),
        c if c == CLASS_JMP | Cond::Eq as u8 => write!(f, "if r{dst} == {imm} goto {off:+}"),
        c if c == CLASS_JMP | Cond::Ne as u8 => write!(f, "if r{dst} != {imm} goto {off:+}"),
        c if c == CLASS_JMP32 | Cond::Eq as u8 => {
            write!(f, "if w{dst} == {:#x} goto {off:+}", imm as u32)
        }
        c if c == CLASS_JMP32 | Cond::Ne as u8 => {
            write!(f, "if w{dst} != {:#x} goto {off:+}", imm as u32)
        }
        _ if is_wide(i) && src == PSEUDO_MAP_FD => write!(f, "r{dst} = map[fd {imm}] ll"),
        c => write!(
            f,
            "; opcode {c:#04x} dst r{dst} src r{src} off {off} imm {imm}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        // from the kernel's own test programs (`BPF_MOV64_IMM(BPF_REG_0, 1)`, `BPF_EXIT_INSN()`)
        assert_eq!(mov_imm(R0, 1).encode(), [0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
        assert_eq!(exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // `*(u64 *)(r10 -8) = r0`: dst in the low nibble, src in the high one
        assert_eq!(
            store(Size::Dw, FP, -8, R0).encode(),
            [0x7b, 0x0a, 0xf8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            load(Size::W, R1, R6, 4).encode(),
            [0x61, 0x61, 4, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            load_map_fd(R1, 5)[0].encode(),
            [0x18, 0x11, 0, 0, 5, 0, 0, 0]
        );
        assert_eq!(call(Helper::Bind).encode(), [0x85, 0, 0, 0, 64, 0, 0, 0]);
    }

    #[test]
    fn labels_resolve_to_relative_offsets() {
        let mut asm = Asm::new();
        asm.jump_if(Cond::Eq, R1, 0, "out")
            .push([mov_imm(R0, 0)])
            .jump32_if(Cond::Ne, R1, 0xffff_0000_u32 as i32, "out")
            .label("out")
            .push([mov_imm(R0, 1), exit()]);
        let insns = asm.finish();
        assert_eq!((insns[0].off, insns[2].off), (2, 0));
        assert_eq!(
            Listing(&insns).to_string(),
            "  0: if r1 == 0 goto +2\n  1: r0 = 0\n  2: if w1 != 0xffff0000 goto +0\n  3: r0 = 1\n  4: exit\n"
        );
        assert_eq!(insns[2].encode()[0], 0x56);
    }

    #[test]
    #[should_panic(expected = "never placed")]
    fn a_jump_to_a_missing_label_is_a_bug() {
        Asm::new().jump_if(Cond::Eq, R1, 0, "nowhere").finish();
    }
}
