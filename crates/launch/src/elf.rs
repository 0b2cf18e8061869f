//! Whether a program can be reached by `LD_PRELOAD`: only programs started by the dynamic
//! loader (an ELF with a `PT_INTERP` header) are; statically linked ones are not.

use object::elf::PT_INTERP;
use object::read::elf::{FileHeader, ProgramHeader};
use object::read::ReadCache;
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
        Ok(FileKind::Elf32) => has_interpreter::<elf::FileHeader32<Endianness>>(&cache),
        Ok(FileKind::Elf64) => has_interpreter::<elf::FileHeader64<Endianness>>(&cache),
        _ => None,
    };
    Ok(match linkage {
        Some(true) => Linkage::Dynamic,
        Some(false) => Linkage::Static,
        None => Linkage::Unknown,
    })
}

fn has_interpreter<H: FileHeader<Endian = Endianness>>(data: &ReadCache<File>) -> Option<bool> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let headers = header.program_headers(endian, data).ok()?;
    Some(headers.iter().any(|ph| ph.p_type(endian) == PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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

    #[test]
    fn other_files_are_unknown() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "hello").unwrap();
        assert_eq!(linkage(f.path()).unwrap(), Linkage::Unknown);
    }
}
