//! Files replaced atomically: write a temporary file, fsync it, rename it over the
//! target, fsync the directory. A reader sees the old contents or the new, never a mix,
//! and after a crash the last completed write is what is there.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::disk;

/// Replaces `path` with `contents`, durably.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    disk::check_write(path)?;
    {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        disk::check_fsync(path)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// The contents of `path`, or `None` if it does not exist.
pub fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vote");
        assert_eq!(read_if_exists(&p).unwrap(), None);
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_if_exists(&p).unwrap(), Some(b"two".to_vec()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
