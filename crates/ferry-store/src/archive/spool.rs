//! Where an archive's layers wait until its images are known ([`SpoolDir`]), and the rule
//! that nothing is left there, whatever ends the run: every spool file is a guard that
//! removes itself when its layer is dropped (a failed layer's at once), the directory is
//! removed when the import ends, and on a panic — whose hook ends the process without
//! running destructors — [`remove_all_now`] removes every spool directory still open, and
//! no spool file can be created after it has begun.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use tempfile::{TempDir, TempPath};

/// The spool directories open now.
static OPEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// True once the process is being torn down: no spool file is created after that. Files
/// are created under a read lock, so [`remove_all_now`] (the write lock) never races one.
static STOPPING: RwLock<bool> = RwLock::new(false);

/// A spool directory: removed, with everything in it, on drop.
#[derive(Debug)]
pub struct SpoolDir {
    dir: TempDir,
}

impl SpoolDir {
    /// A new directory `ferry-spool-*` in `base`.
    pub fn new_in(base: &Path) -> io::Result<SpoolDir> {
        let dir = tempfile::Builder::new()
            .prefix("ferry-spool-")
            .tempdir_in(base)?;
        OPEN.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dir.path().to_path_buf());
        Ok(SpoolDir { dir })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        OPEN.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|p| p != self.dir.path());
        // TempDir's own drop removes the directory.
    }
}

/// A new spool file in `dir`: the open file, and the guard that removes it on drop.
pub fn create_file(dir: &Path) -> io::Result<(File, TempPath)> {
    let stopping = STOPPING.read().unwrap_or_else(PoisonError::into_inner);
    if *stopping {
        return Err(io::Error::other("ferry is stopping"));
    }
    let file = tempfile::Builder::new()
        .prefix("layer-")
        .suffix(".blob")
        .tempfile_in(dir)?;
    Ok(file.into_parts())
}

/// Removes every open spool directory now, and lets no spool file be created afterwards:
/// for the panic hook, which ends the process without running destructors.
pub fn remove_all_now() {
    // A thread creating a spool file holds the read lock only for that; wait a little for
    // it, but never forever (the panicking thread could be that one).
    for _ in 0..200 {
        match STOPPING.try_write() {
            Ok(mut s) => {
                *s = true;
                break;
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                *p.into_inner() = true;
                break;
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let open = match OPEN.try_lock() {
        Ok(o) => o.clone(),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().clone(),
        Err(std::sync::TryLockError::WouldBlock) => Vec::new(),
    };
    for dir in open {
        let _ = std::fs::remove_dir_all(dir);
    }
}
