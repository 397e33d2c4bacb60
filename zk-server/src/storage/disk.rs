//! The disk under the log, votes and snapshots: how much room it has left (statvfs,
//! through rustix), and the faults a test can inject into the storage layer (a
//! failing-file shim).
//!
//! [`DiskFaults::install`] registers faults for a directory; storage opened under it
//! (the log at open, atomic files at each write) consults them before writing and
//! before each fsync. Nothing registers faults in production, where the registry is
//! empty and each check is a lookup done once at open (the log) or per rare write
//! (votes, snapshots).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Injected faults for one directory tree. Each is off until set.
#[derive(Debug)]
pub struct DiskFaults {
    writes_fail: AtomicBool,
    fsyncs_fail: AtomicBool,
    /// Free bytes to report instead of the file system's figure (`u64::MAX`: none).
    free_bytes: AtomicU64,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<DiskFaults>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<DiskFaults>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

impl DiskFaults {
    /// Registers (or returns the registered) faults for `dir` and everything under it.
    /// They apply to storage opened after this call.
    pub fn install(dir: &Path) -> Arc<DiskFaults> {
        let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(dir.to_path_buf())
            .or_insert_with(|| {
                Arc::new(DiskFaults {
                    writes_fail: AtomicBool::new(false),
                    fsyncs_fail: AtomicBool::new(false),
                    free_bytes: AtomicU64::new(u64::MAX),
                })
            })
            .clone()
    }

    /// Removes the faults registered for `dir`.
    pub fn uninstall(dir: &Path) {
        let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
        map.remove(dir);
    }

    /// The faults registered for `path` or a directory above it.
    pub fn lookup(path: &Path) -> Option<Arc<DiskFaults>> {
        let map = registry().lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return None;
        }
        path.ancestors().find_map(|dir| map.get(dir).cloned())
    }

    /// Writes fail with `ENOSPC`, as on a full disk.
    pub fn fail_writes(&self, on: bool) {
        self.writes_fail.store(on, Ordering::SeqCst);
    }

    /// fsyncs fail with `EIO`, as when the device lost written pages.
    pub fn fail_fsyncs(&self, on: bool) {
        self.fsyncs_fail.store(on, Ordering::SeqCst);
    }

    /// Reports `bytes` free instead of the real figure (`None`: the real one).
    pub fn report_free_bytes(&self, bytes: Option<u64>) {
        self.free_bytes
            .store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Before a write: the injected `ENOSPC`, if on.
    pub fn check_write(&self) -> io::Result<()> {
        if self.writes_fail.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }

    /// Before an fsync: the injected `EIO`, if on.
    pub fn check_fsync(&self) -> io::Result<()> {
        if self.fsyncs_fail.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    fn free_bytes(&self) -> Option<u64> {
        match self.free_bytes.load(Ordering::SeqCst) {
            u64::MAX => None,
            n => Some(n),
        }
    }
}

/// Checks the faults registered for `path` before a write.
pub fn check_write(path: &Path) -> io::Result<()> {
    DiskFaults::lookup(path).map_or(Ok(()), |f| f.check_write())
}

/// Checks the faults registered for `path` before an fsync.
pub fn check_fsync(path: &Path) -> io::Result<()> {
    DiskFaults::lookup(path).map_or(Ok(()), |f| f.check_fsync())
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    if let Some(n) = DiskFaults::lookup(dir).and_then(|f| f.free_bytes()) {
        return Ok(n);
    }
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_under_their_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        let faulty = dir.path().join("faulty");
        let faults = DiskFaults::install(&faulty);
        faults.fail_writes(true);
        assert!(check_write(&faulty.join("log")).is_err());
        assert!(check_write(&dir.path().join("other")).is_ok());
        assert!(check_fsync(&faulty.join("log")).is_ok());
        faults.fail_fsyncs(true);
        let e = check_fsync(&faulty).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        faults.report_free_bytes(Some(5));
        assert_eq!(free_bytes(&faulty).unwrap(), 5);
        DiskFaults::uninstall(&faulty);
        assert!(check_write(&faulty).is_ok());
    }

    #[test]
    fn free_bytes_reads_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
