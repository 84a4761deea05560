//! Snapshot files: round trip, pruning to the newest K, and falling back past damaged
//! or rejected snapshots (each skipped file reported with its reason).

mod common;

use common::{flip, read, write};
use fincore_journal::*;
use std::path::{Path, PathBuf};

/// The state image stored for the snapshot at `seq`.
fn image(seq: u64) -> Vec<u8> {
    (0..1_000 + seq as usize).map(|i| (i as u64 * 7 + seq) as u8).collect()
}

/// The state hash stored for the snapshot at `seq`.
fn hash(seq: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The journal checksum stored for the snapshot at `seq`.
fn journal_crc(seq: u64) -> u32 {
    (seq as u32).wrapping_mul(0x2545_F491)
}

fn snapshot(seq: u64) -> Snapshot {
    Snapshot {
        seq,
        state_hash: hash(seq),
        journal_crc: Some(journal_crc(seq)),
        payload: image(seq),
    }
}

/// A store keeping `keep`, with snapshots at `seqs` written in order.
fn store_with(dir: &Path, keep: usize, seqs: &[u64]) -> SnapshotStore {
    let store = SnapshotStore::open(dir, keep).unwrap();
    for seq in seqs {
        let path = store.write(*seq, hash(*seq), journal_crc(*seq), &image(*seq)).unwrap();
        assert_eq!(path, store.path(*seq));
    }
    store
}

fn accept_all(_: &Snapshot) -> Result<(), String> {
    Ok(())
}

fn listed(store: &SnapshotStore) -> Vec<u64> {
    store.list().unwrap().into_iter().map(|(seq, _)| seq).collect()
}

#[test]
fn write_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3, &[100]);
    assert_eq!(SnapshotStore::load(&store.path(100)).unwrap(), snapshot(100));
    let (found, skipped) = store.load_newest(accept_all).unwrap();
    assert_eq!((found, skipped), (Some(snapshot(100)), vec![]));
    // An empty state image is a valid snapshot too.
    store.write(200, 5, 7, &[]).unwrap();
    let empty = Snapshot { seq: 200, state_hash: 5, journal_crc: Some(7), payload: vec![] };
    assert_eq!(store.load_newest(accept_all).unwrap().0, Some(empty));
    // The file name is the sequence in 20 digits.
    let name = store.path(100).file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(name, "snapshot-00000000000000000100.snap");
}

#[test]
fn keeps_the_newest_k() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3, &[10, 20, 30, 40, 50, 60]);
    assert_eq!(listed(&store), vec![60, 50, 40]);
    for seq in [10, 20, 30] {
        assert!(!store.path(seq).exists(), "{seq} pruned");
    }
    // `keep` 0 means 1: a store never deletes its only snapshot.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 0, &[1, 2]);
    assert_eq!(listed(&store), vec![2]);
    // Snapshots above the one written (left by a history that was cut back) neither
    // count toward `keep` nor are deleted: the new one survives its own write.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2, &[70, 80, 90, 10, 20, 30]);
    assert_eq!(listed(&store), vec![90, 80, 30, 20]);
}

/// A named way to damage a snapshot file, and what the skip reason must say.
type Damage = (&'static str, Box<dyn Fn(&Path)>, &'static str);

/// How the newest snapshot is damaged.
fn damages() -> Vec<Damage> {
    let truncate = |len: u64| {
        move |path: &Path| {
            std::fs::File::options().write(true).open(path).unwrap().set_len(len).unwrap()
        }
    };
    vec![
        ("magic", Box::new(|p: &Path| flip(p, 2, 0x01)), "bad magic"),
        ("header seq", Box::new(|p: &Path| flip(p, 17, 0x01)), "header checksum"),
        ("header crc", Box::new(|p: &Path| flip(p, 45, 0x80)), "header checksum"),
        ("payload", Box::new(|p: &Path| flip(p, 48 + 500, 0x01)), "payload checksum"),
        ("last payload byte", Box::new(|p: &Path| flip(p, 48 + 1_029, 0x01)), "payload checksum"),
        ("truncated payload", Box::new(truncate(48 + 700)), "header says"),
        ("truncated header", Box::new(truncate(20)), "shorter than"),
        ("empty", Box::new(truncate(0)), "shorter than"),
        ("extended", Box::new(|p: &Path| write(p, &[read(p), vec![0]].concat())), "header says"),
    ]
}

#[test]
fn damaged_newest_falls_back_to_the_previous() {
    for (name, damage, why) in damages() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 3, &[10, 20, 30]);
        damage(&store.path(30));
        let (found, skipped) = store.load_newest(accept_all).unwrap();
        assert_eq!(found, Some(snapshot(20)), "{name}");
        assert_eq!(skipped.len(), 1, "{name}");
        assert_eq!(skipped[0].0, store.path(30), "{name}");
        assert!(skipped[0].1.contains(why), "{name}: {}", skipped[0].1);
        assert!(skipped[0].1.contains("snapshot-00000000000000000030.snap"), "{name}");
        let error = SnapshotStore::load(&store.path(30)).expect_err("damaged");
        assert!(matches!(error, JournalError::Corrupt { .. }), "{name}: {error:?}");
    }
}

#[test]
fn all_damaged_gives_none_and_lists_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3, &[10, 20, 30]);
    for (seq, (_, damage, _)) in [10, 20, 30].into_iter().zip(damages()) {
        damage(&store.path(seq));
    }
    let (found, skipped) = store.load_newest(accept_all).unwrap();
    assert_eq!(found, None);
    let paths: Vec<PathBuf> = skipped.into_iter().map(|(path, _)| path).collect();
    assert_eq!(paths, vec![store.path(30), store.path(20), store.path(10)], "newest first");
    // No snapshots at all: also None, nothing skipped.
    let empty = SnapshotStore::open(dir.path().join("none"), 3).unwrap();
    assert_eq!(empty.load_newest(accept_all).unwrap(), (None, vec![]));
}

#[test]
fn rejected_by_the_caller_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3, &[10, 20, 30]);
    let mut seen = Vec::new();
    let (found, skipped) = store
        .load_newest(|snapshot| {
            seen.push(snapshot.seq);
            if snapshot.seq > 10 {
                Err(format!("state at {} does not rebuild", snapshot.seq))
            } else {
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(seen, vec![30, 20, 10]);
    assert_eq!(found, Some(snapshot(10)));
    let expected = vec![
        (store.path(30), "state at 30 does not rebuild".to_string()),
        (store.path(20), "state at 20 does not rebuild".to_string()),
    ];
    assert_eq!(skipped, expected);
    let (found, skipped) = store.load_newest(|_| Err("no".into())).unwrap();
    assert_eq!((found, skipped.len()), (None, 3));
}

#[test]
fn leftover_temporary_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2, &[10]);
    // What a crash between creating the temporary file and renaming it leaves.
    let leftover = dir.path().join(".snapshot-00000000000000000050.tmp");
    write(&leftover, b"half a snapshot");
    write(&dir.path().join("notes.txt"), b"not a snapshot");
    assert_eq!(listed(&store), vec![10]);
    assert_eq!(store.load_newest(accept_all).unwrap(), (Some(snapshot(10)), vec![]));
    // Writing that sequence again replaces the leftover.
    store.write(50, hash(50), journal_crc(50), &image(50)).unwrap();
    assert!(!leftover.exists());
    assert_eq!(store.load_newest(accept_all).unwrap().0, Some(snapshot(50)));
    assert_eq!(listed(&store), vec![50, 10]);
}

/// A version 1 file (before `journal_crc`: bytes 12..16 reserved and zero) still loads,
/// with no journal checksum, so the caller can tell it apart and pass it over.
#[test]
fn a_version_1_file_loads_without_a_journal_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2, &[30]);
    let path = store.path(30);
    let mut bytes = read(&path);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].fill(0);
    let header_crc = record::record_crc(0, &bytes[0..44], &[]);
    bytes[44..48].copy_from_slice(&header_crc.to_le_bytes());
    write(&path, &bytes);
    let loaded = SnapshotStore::load(&path).unwrap();
    assert_eq!(loaded, Snapshot { journal_crc: None, ..snapshot(30) });
    // Any other version is refused.
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let header_crc = record::record_crc(0, &bytes[0..44], &[]);
    bytes[44..48].copy_from_slice(&header_crc.to_le_bytes());
    write(&path, &bytes);
    let error = SnapshotStore::load(&path).expect_err("version 3").to_string();
    assert!(error.contains("unsupported snapshot version 3"), "{error}");
}
