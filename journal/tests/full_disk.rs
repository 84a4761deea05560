//! A full file system: a segment that cannot be reserved is refused with
//! `JournalError::Reserve` and leaves nothing behind, a roll-over that runs out of room
//! fails the append (and every later one) instead of killing the process with `SIGBUS`
//! at its first write to a new page, and a snapshot that does not fit leaves no
//! temporary file. Everything appended before the refusal is read back.
//!
//! The file systems are small tmpfs mounts made by the test (`testing::Tmpfs`), which
//! needs root or `CAP_SYS_ADMIN`. Where it cannot mount, each test prints why and
//! returns; docs/TESTING.md lists these as the environment-dependent tests.

mod common;

use common::*;
use fincore_journal::testing::Tmpfs;
use fincore_journal::*;
use std::path::Path;

/// A tmpfs of `bytes` on a temporary directory (`None` where this cannot mount).
/// (The directory comes first so that it is dropped after the mount.)
fn small_fs(bytes: u64) -> Option<(tempfile::TempDir, Tmpfs)> {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(dir.path(), bytes)?;
    Some((dir, fs))
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
    let Some((_dir, fs)) = small_fs(64 * 1024) else { return };
    let dir = fs.root().join("journal");
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
    // Room for two segments and the lock file, not for a third. Segments of 16 MiB:
    // large enough that appends reach the roll-over while the preparer is still at the
    // second one, the race a roll-over must wait out.
    const SIZE: u64 = 16 << 20;
    let Some((_dir, fs)) = small_fs(2 * SIZE + 32 * 1024) else { return };
    let dir = fs.root().join("journal");
    let (mut journal, _) = Journal::open(config(&dir, SIZE)).unwrap();
    let len = 1_000;
    let mut appended = 0u64;
    let error = loop {
        let seq = appended + 1;
        assert!(seq < 3 * SIZE / 1_000, "three segments' worth went into room for two");
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
    // Both segments there was room for were used, whichever of the preparer and the
    // roll-over reserved the second (the roll-over waits for a preparation in flight
    // rather than fail beside it).
    assert_eq!(segment_names(&dir).len(), 2, "{:?}", names(&dir));
    assert!(!names(&dir).iter().any(|n| n.ends_with(".tmp")), "{:?}", names(&dir));

    // Everything acknowledged is there, and the journal opens again where it stopped.
    let (records, torn) = read_all(&dir, 1).unwrap();
    assert_eq!(torn, None);
    assert_originals(&records, 1, appended, &vec![len; appended as usize]);
    let (_journal, recovery) = Journal::open(config(&dir, SIZE)).unwrap();
    assert_eq!(recovery.last_seq, appended);
}

#[test]
fn a_snapshot_without_room_leaves_no_temporary_file() {
    let Some((_dir, fs)) = small_fs(64 * 1024) else { return };
    let store = SnapshotStore::open(fs.root().join("snapshots"), 2).unwrap();
    let error = store.write(7, 0xfeed, 0, &vec![0xab; 256 * 1024]).expect_err("no room");
    assert!(error.to_string().contains("No space left"), "{error}");
    assert_eq!(names(&fs.root().join("snapshots")), Vec::<String>::new());
    assert!(fs.used() < 16 * 1024, "{} bytes still taken", fs.used());
}

/// A journal whose last segment is sparse (copied with `cp --sparse=always`, or made
/// by an older build) onto a file system without room for the rest of it: the open is
/// refused before anything is mapped or allocated (on tmpfs, even reading a hole
/// allocates, and a mapped page without room is a `SIGBUS`), leaving the file system
/// as it was; with room, the open reserves the whole segment.
#[test]
fn a_sparse_last_segment_is_reserved_before_it_is_read() {
    let built = tempfile::tempdir().unwrap();
    let lens = vec![200; 50];
    build(built.path(), &lens, SEGMENT_SIZE_MIN);
    let original = read(&segment(built.path(), 1));
    let data_len = original.iter().rposition(|b| *b != 0).unwrap() + 1;
    let copy_sparsely = |dir: &Path| {
        std::fs::create_dir(dir).unwrap();
        write(&segment(dir, 1), &original[..data_len]);
        let file = std::fs::OpenOptions::new().write(true).open(segment(dir, 1)).unwrap();
        file.set_len(SEGMENT_SIZE_MIN).unwrap();
    };
    let blocks = |dir: &Path| {
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(segment(dir, 1)).unwrap())
    };

    let Some((_dir, fs)) = small_fs(64 * 1024) else { return };
    let dir = fs.root().join("journal");
    copy_sparsely(&dir);
    let (used, sparse) = (fs.used(), blocks(&dir));
    assert!(sparse * 512 < SEGMENT_SIZE_MIN / 2, "the copy is sparse");
    let error = refused(Journal::open(config(&dir, SEGMENT_SIZE_MIN)), "open without room");
    assert!(matches!(error, JournalError::Reserve { .. }), "{error}");
    assert!(error.to_string().contains("free"), "{error}");
    assert_eq!((fs.used(), blocks(&dir)), (used, sparse), "the refused open took room");
    assert_eq!(read(&segment(&dir, 1)), original, "the segment changed");
    drop(fs);

    let Some((_dir, fs)) = small_fs(4 * SEGMENT_SIZE_MIN) else { return };
    let dir = fs.root().join("journal");
    copy_sparsely(&dir);
    let (journal, recovery) = Journal::open(config(&dir, SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!(recovery.last_seq, 50);
    assert!(blocks(&dir) * 512 >= SEGMENT_SIZE_MIN, "reserved: {} blocks", blocks(&dir));
    drop(journal);
    assert_eq!(read(&segment(&dir, 1)), original);
}
