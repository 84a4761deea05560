//! Test aid (feature `testing`): a small tmpfs, to fill a file system on purpose.
//! Mounting needs root or `CAP_SYS_ADMIN`; where it is not allowed, [`Tmpfs::mount`]
//! says why and returns `None`, and the test that asked returns (docs/TESTING.md, "full
//! file system").
//!
//! The mount is a system call, not a `mount` process: a child spawned while a test
//! elsewhere in the process holds a journal's lock would hold the lock too, until it
//! executes `mount`, and a reopen in that moment would find the journal locked.

use std::path::{Path, PathBuf};

/// A tmpfs mounted on a directory, detached when dropped.
pub struct Tmpfs {
    root: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` (rounded up to pages) on the existing directory `at`.
    pub fn mount(at: &Path, bytes: u64) -> Option<Tmpfs> {
        use rustix::mount::{MountFlags, mount};
        let size = std::ffi::CString::new(format!("size={bytes}")).expect("no NUL");
        match mount("tmpfs", at, "tmpfs", MountFlags::empty(), size.as_c_str()) {
            Ok(()) => Some(Tmpfs { root: at.to_path_buf() }),
            Err(errno) => {
                eprintln!("not run: cannot mount a tmpfs here ({errno})");
                None
            }
        }
    }

    /// Where it is mounted.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        let stat = rustix::fs::statvfs(&self.root).expect("statvfs of a mounted tmpfs");
        (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.root, rustix::mount::UnmountFlags::DETACH);
    }
}
