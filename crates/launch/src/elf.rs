//! Whether a program can be reached by `LD_PRELOAD`: only programs started by the dynamic
//! loader (an ELF with a `PT_INTERP` header) are; statically linked ones are not, and
//! neither are Go programs, dynamically linked or not (their `net` package makes its socket
//! system calls itself), told by their build information as Go's `debug/buildinfo` finds it.

use object::elf::{PF_W, PF_X, PT_INTERP, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::read::{ReadCache, ReadRef};
use object::{elf, Endianness, FileKind};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// How a program file is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// An ELF run by the dynamic loader, which honours `LD_PRELOAD`.
    Dynamic,
    /// An ELF without an interpreter: `LD_PRELOAD` never reaches it.
    Static,
    /// An ELF built by Go: its sockets bypass libc, so the shim cannot hold them.
    Go,
    /// A `#!` script run by this interpreter.
    Script(PathBuf),
    /// Neither ELF nor script.
    Unknown,
}

/// Reads just enough of `path` to tell its [`Linkage`].
pub fn linkage(path: &Path) -> io::Result<Linkage> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    if n == 2 && magic == *b"#!" {
        let mut line = Vec::new();
        file.take(4096).read_to_end(&mut line)?;
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        return Ok(match text.split_whitespace().next() {
            Some(interpreter) => Linkage::Script(PathBuf::from(interpreter)),
            None => Linkage::Unknown,
        });
    }
    let cache = ReadCache::new(File::open(path)?);
    let linkage = match FileKind::parse(&cache) {
        Ok(FileKind::Elf32) => elf_linkage::<elf::FileHeader32<Endianness>>(&cache),
        Ok(FileKind::Elf64) => elf_linkage::<elf::FileHeader64<Endianness>>(&cache),
        _ => None,
    };
    Ok(linkage.unwrap_or(Linkage::Unknown))
}

/// The magic that starts Go's build information, near the start of the data segment.
const GO_BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// How much of the data segment Go's own reader searches for it.
const GO_BUILDINFO_SEARCH: u64 = 64 * 1024;

fn elf_linkage<H: FileHeader<Endian = Endianness>>(data: &ReadCache<File>) -> Option<Linkage> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let headers = header.program_headers(endian, data).ok()?;
    let go_section = header
        .sections(endian, data)
        .ok()
        .is_some_and(|sections| sections.section_by_name(endian, b".go.buildinfo").is_some());
    // Without section headers (stripped with sstrip), Go looks in the first data segment.
    let data_segment = headers
        .iter()
        .find(|ph| ph.p_type(endian) == PT_LOAD && ph.p_flags(endian) & (PF_X | PF_W) == PF_W);
    let go_magic = data_segment.is_some_and(|ph| {
        let size = ph.p_filesz(endian).into().min(GO_BUILDINFO_SEARCH);
        data.read_bytes_at(ph.p_offset(endian).into(), size)
            .is_ok_and(|bytes| {
                bytes
                    .windows(GO_BUILDINFO_MAGIC.len())
                    .any(|w| w == GO_BUILDINFO_MAGIC)
            })
    });
    Some(if go_section || go_magic {
        Linkage::Go
    } else if headers.iter().any(|ph| ph.p_type(endian) == PT_INTERP) {
        Linkage::Dynamic
    } else {
        Linkage::Static
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::Command;

    #[test]
    fn system_shell_is_dynamic() {
        assert_eq!(linkage(Path::new("/bin/sh")).unwrap(), Linkage::Dynamic);
    }

    #[test]
    fn scripts_name_their_interpreter() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "#!/usr/bin/env python3\nprint(1)").unwrap();
        assert_eq!(
            linkage(f.path()).unwrap(),
            Linkage::Script("/usr/bin/env".into())
        );
    }

    /// Compiles a C program with gcc; `flags` such as `-static`.
    fn gcc(dir: &Path, source: &str, flags: &[&str]) -> PathBuf {
        let src = dir.join("prog.c");
        std::fs::write(&src, source).unwrap();
        let out = dir.join("prog");
        let status = Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success(), "gcc failed");
        out
    }

    const MAIN: &str = "int main(void) { return 0; }\n";

    #[test]
    fn a_static_c_program_is_static() {
        let dir = tempfile::tempdir().unwrap();
        let program = gcc(dir.path(), MAIN, &["-static"]);
        assert_eq!(linkage(&program).unwrap(), Linkage::Static);
    }

    #[test]
    fn the_go_build_info_section_makes_a_go_program() {
        // A C program given the section Go's linker writes (a Go toolchain is not needed
        // here; the CLI's tests build a real Go program).
        let dir = tempfile::tempdir().unwrap();
        for flags in [&[][..], &["-static"]] {
            let program = gcc(dir.path(), MAIN, flags);
            let info = dir.path().join("info");
            std::fs::write(&info, b"\xff Go buildinf:\x08\x02").unwrap();
            let status = Command::new("objcopy")
                .arg(format!("--add-section=.go.buildinfo={}", info.display()))
                .arg(&program)
                .status()
                .unwrap();
            assert!(status.success(), "objcopy failed");
            assert_eq!(linkage(&program).unwrap(), Linkage::Go, "{flags:?}");
        }
    }

    #[test]
    fn the_go_build_info_magic_in_the_data_segment_makes_a_go_program() {
        // Without that section (section headers stripped), Go's reader looks for the magic
        // at the start of the first data segment.
        let with_magic = "__attribute__((aligned(16))) char info[32] = \"\\xff Go buildinf:\";\n\
                          int main(void) { return info[1] == 0; }\n";
        let dir = tempfile::tempdir().unwrap();
        let program = gcc(dir.path(), with_magic, &[]);
        assert_eq!(linkage(&program).unwrap(), Linkage::Go);
        let without = gcc(dir.path(), &with_magic.replace("Go", "No"), &[]);
        assert_eq!(linkage(&without).unwrap(), Linkage::Dynamic);
    }

    #[test]
    fn other_files_are_unknown() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "hello").unwrap();
        assert_eq!(linkage(f.path()).unwrap(), Linkage::Unknown);
    }
}
