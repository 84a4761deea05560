//! A full file system: a segment that cannot be reserved is refused with
//! `JournalError::Reserve` and leaves nothing behind, a roll-over that runs out of room
//! fails the append (and every later one) instead of killing the process with `SIGBUS`
//! at its first write to a new page, and a snapshot that does not fit leaves no
//! temporary file. Everything appended before the refusal is read back.
//!
//! The file systems are small tmpfs mounts made by the test, which needs root (or
//! `CAP_SYS_ADMIN`) and the `mount` command. Where it cannot mount, each test prints
//! why and returns; docs/TESTING.md lists this as the one environment-dependent test.

mod common;

use common::*;
use fincore_journal::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("fs");
        std::fs::create_dir(&root).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&root)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { root, _dir: dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!("not run: cannot mount a tmpfs here ({})", why.trim());
                None
            }
            Err(error) => {
                eprintln!("not run: cannot run mount ({error})");
                None
            }
        }
    }

    fn used(&self) -> u64 {
        let stat = rustix::fs::statvfs(&self.root).unwrap();
        (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.root).status();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn segment_names(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| n.ends_with(".journal")).collect()
}

#[test]
fn a_first_segment_without_room_is_refused_and_gives_its_room_back() {
    let Some(fs) = Tmpfs::mount(64 * 1024) else { return };
    let dir = fs.root.join("journal");
    let error = refused(Journal::open(config(&dir, SEGMENT_SIZE_MIN)), "open on a full disk");
    let JournalError::Reserve { size, error: source, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(*size, SEGMENT_SIZE_MIN);
    assert_eq!(source.raw_os_error(), Some(28), "ENOSPC: {source}");
    assert!(error.to_string().contains("cannot reserve"), "{error}");
    assert_eq!(segment_names(&dir), Vec::<String>::new(), "a refused segment was left");
    assert!(fs.used() < 16 * 1024, "{} bytes still taken", fs.used());
}

#[test]
fn a_roll_over_without_room_fails_the_append_and_keeps_what_was_written() {
    // Room for two smallest segments and the lock file, not for a third.
    let Some(fs) = Tmpfs::mount(2 * SEGMENT_SIZE_MIN + 32 * 1024) else { return };
    let dir = fs.root.join("journal");
    let (mut journal, _) = Journal::open(config(&dir, SEGMENT_SIZE_MIN)).unwrap();
    let len = 1_000;
    let mut appended = 0u64;
    let error = loop {
        let seq = appended + 1;
        assert!(seq < 1_000, "three segments' worth was appended into room for two");
        match journal.append(&meta(seq), &payload(seq, len, 0)) {
            Ok(()) => appended = seq,
            Err(error) => break error,
        }
    };
    assert!(matches!(error, JournalError::Reserve { .. }), "{error}");
    // The journal stays refused: a later append cannot slip a record past the gap.
    let again = journal.append(&meta(appended + 1), &payload(appended + 1, len, 0));
    let again = again.expect_err("a broken journal refuses appends");
    assert!(again.to_string().contains("cannot reserve"), "{again}");
    drop(journal);
    // One or two segments, depending on whether the preparer or the roll-over met the
    // full file system first; either way the refusal is an error, not a lost record.
    assert!(appended > 100, "refused after {appended} records");
    assert!(!segment_names(&dir).is_empty(), "{:?}", names(&dir));
    assert!(!names(&dir).iter().any(|n| n.ends_with(".tmp")), "{:?}", names(&dir));

    // Everything acknowledged is there, and the journal opens again where it stopped.
    let (records, torn) = read_all(&dir, 1).unwrap();
    assert_eq!(torn, None);
    assert_originals(&records, 1, appended, &vec![len; appended as usize]);
    let (_journal, recovery) = Journal::open(config(&dir, SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!(recovery.last_seq, appended);
}

#[test]
fn a_snapshot_without_room_leaves_no_temporary_file() {
    let Some(fs) = Tmpfs::mount(64 * 1024) else { return };
    let store = SnapshotStore::open(fs.root.join("snapshots"), 2).unwrap();
    let error = store.write(7, 0xfeed, 0, &vec![0xab; 256 * 1024]).expect_err("no room");
    assert!(error.to_string().contains("No space left"), "{error}");
    assert_eq!(names(&fs.root.join("snapshots")), Vec::<String>::new());
    assert!(fs.used() < 16 * 1024, "{} bytes still taken", fs.used());
}
