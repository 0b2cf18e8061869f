//! The SHA-256 of the files a run sends to its hosts: the controller lists every regular
//! file it copies with its checksum, and each agent checks its copies against the list in
//! preflight, so that a host never runs on a file that arrived damaged or was changed.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The SHA-256 of the file at `path`, in hex.
pub fn sha256(path: &Path) -> io::Result<String> {
    let mut hash = Sha256::new();
    io::copy(&mut std::fs::File::open(path)?, &mut hash)?;
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A file as last hashed: its path, modification time and size.
type Seen = (PathBuf, SystemTime, u64);

/// [`sha256`] and the size of `path`, computed once per version of the file in this
/// process: every host's deploy thread installs the same `p2plab` (over 100 MB in a debug
/// build), and hashing it once per host would cost seconds.
pub fn sha256_once(path: &Path) -> io::Result<(String, u64)> {
    static SEEN: Mutex<Option<HashMap<Seen, String>>> = Mutex::new(None);
    let meta = std::fs::metadata(path)?;
    let key = (path.to_path_buf(), meta.modified()?, meta.len());
    // Held while hashing, so that threads asking for the same file wait for one hash.
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashMap::new);
    if let Some(digest) = seen.get(&key) {
        return Ok((digest.clone(), meta.len()));
    }
    let digest = sha256(path)?;
    seen.insert(key, digest.clone());
    Ok((digest, meta.len()))
}

/// Every regular file at or under `path` (symbolic links followed, as uploads do).
pub fn files(path: &Path) -> io::Result<Vec<PathBuf>> {
    if !std::fs::metadata(path)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path)? {
        found.extend(files(&entry?.path())?);
    }
    found.sort();
    Ok(found)
}

/// What differs between the `expected` files (path relative to `root`, checksum) and
/// those under `root`: one line per file missing or different.
pub fn verify(root: &Path, expected: &[(String, String)]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(rel, want)| {
            let path = root.join(rel);
            match sha256(&path) {
                Ok(got) if &got == want => None,
                Ok(_) => Some(format!(
                    "{} differs from the controller's copy (SHA-256): it changed or arrived damaged; run again",
                    path.display()
                )),
                Err(e) => Some(format!("{}: {e}; run again", path.display())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_listed_and_a_changed_or_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), "abc").unwrap();
        std::fs::write(dir.path().join("sub/b"), "").unwrap();
        let list = files(dir.path()).unwrap();
        assert_eq!(list, [dir.path().join("a"), dir.path().join("sub/b")]);
        // SHA-256 of "abc" and of nothing, as `sha256sum` prints them
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256(&dir.path().join("a")).unwrap(), abc);
        let expected = [
            ("a".to_string(), abc.to_string()),
            ("sub/b".to_string(), empty.to_string()),
        ];
        assert!(verify(dir.path(), &expected).is_empty());
        std::fs::write(dir.path().join("a"), "abd").unwrap();
        std::fs::remove_file(dir.path().join("sub/b")).unwrap();
        let problems = verify(dir.path(), &expected);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("differs"), "{problems:?}");
        assert!(problems[1].contains("sub/b"), "{problems:?}");
    }
}
