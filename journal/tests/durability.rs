//! Durability reporting: `publish` makes appended records eligible, the watermark never
//! passes what was published, `wait_durable` returns once it covers a sequence, and a
//! `DurabilityHandle` does the same from another thread, in both modes.

mod common;

use common::*;
use fincore_journal::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn open(dir: &std::path::Path, durability: Durability) -> Journal {
    let config = JournalConfig { durability, ..config(dir, SEGMENT_SIZE_MIN) };
    Journal::open(config).unwrap().0
}

#[test]
fn fsync_durable_after_publish_and_never_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path(), Durability::Fsync);
    assert_eq!(journal.durability(), Durability::Fsync);
    let mut published = 0;
    for seq in 1..=3_000 {
        journal.append(&meta(seq), &payload(seq, 200, 0)).unwrap();
        assert!(journal.durable_seq() <= published, "durable beyond what was published");
        if seq % 250 == 0 {
            journal.publish();
            published = seq;
            if seq % 1_000 == 0 {
                assert!(journal.wait_durable(seq, WAIT), "durable after publish");
                assert_eq!(journal.durable_seq(), seq);
            }
        }
    }
    assert!(list_segments(dir.path()).unwrap().len() >= 4, "rolled over while flushing");
    // Appended but not published: never reported durable.
    journal.append(&meta(3_001), b"unpublished").unwrap();
    assert!(!journal.wait_durable(3_001, Duration::from_millis(100)));
    assert_eq!(journal.durable_seq(), 3_000);
    journal.publish();
    assert!(journal.wait_durable(3_001, WAIT));
    journal.close().unwrap();
    let (records, torn) = read_all(dir.path(), 1).unwrap();
    assert_eq!((records.len(), torn), (3_001, None));
}

#[test]
fn process_mode_is_durable_at_publish() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path(), Durability::Process);
    for seq in 1..=10 {
        journal.append(&meta(seq), &payload(seq, 30, 0)).unwrap();
    }
    assert_eq!(journal.durable_seq(), 0, "not before publish");
    assert!(!journal.wait_durable(10, Duration::from_millis(20)));
    journal.publish();
    assert_eq!(journal.durable_seq(), 10);
    assert!(journal.wait_durable(10, Duration::ZERO));
    // Reopened: the recovered records count as durable.
    drop(journal);
    let journal = open(dir.path(), Durability::Process);
    assert_eq!(journal.durable_seq(), 10);
}

/// Another thread waits through a handle while the owner appends and publishes; it
/// checks the watermark only grows and never passes the published sequence.
fn handle_from_another_thread(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path(), durability);
    let handle = journal.durability_handle();
    let published = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (published, done, handle) = (Arc::clone(&published), Arc::clone(&done), handle.clone());
        std::thread::spawn(move || {
            let mut seen = 0;
            while !done.load(Ordering::SeqCst) {
                let durable = handle.durable_seq();
                assert!(durable >= seen, "the watermark went back");
                assert!(durable <= published.load(Ordering::SeqCst), "durable before publish");
                seen = durable;
                std::thread::yield_now();
            }
        })
    };
    let waiter = {
        let handle = handle.clone();
        std::thread::spawn(move || handle.wait_durable(2_000, WAIT))
    };
    for seq in 1..=2_000 {
        journal.append(&meta(seq), &payload(seq, 64, 0)).unwrap();
        if seq % 100 == 0 {
            // Recorded before publishing, so the watcher's bound is never too low.
            published.store(seq, Ordering::SeqCst);
            journal.publish();
        }
    }
    assert!(waiter.join().unwrap(), "{durability:?}: the waiting thread saw 2000 durable");
    assert!(handle.wait_durable(2_000, Duration::ZERO));
    done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    // The handle outlives the journal and keeps the last watermark.
    journal.close().unwrap();
    assert_eq!(handle.durable_seq(), 2_000);
    assert!(!handle.wait_durable(2_001, Duration::from_millis(10)));
}

#[test]
fn handle_from_another_thread_fsync() {
    handle_from_another_thread(Durability::Fsync);
}

#[test]
fn handle_from_another_thread_process() {
    handle_from_another_thread(Durability::Process);
}

#[test]
fn fsync_journal_reopens_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = open(dir.path(), Durability::Fsync);
    for seq in 1..=500 {
        journal.append(&meta(seq), &payload(seq, 100, 0)).unwrap();
    }
    // Dropped without `close`: drop publishes and lets the flusher finish its last sync.
    drop(journal);
    let mut journal = open(dir.path(), Durability::Fsync);
    assert_eq!((journal.last_seq(), journal.durable_seq()), (500, 500));
    journal.append(&meta(501), &payload(501, 100, 0)).unwrap();
    journal.publish();
    assert!(journal.wait_durable(501, WAIT));
    journal.close().unwrap();
    let lens = vec![100; 501];
    let (records, _) = read_all(dir.path(), 1).unwrap();
    assert_originals(&records, 1, 501, &lens);
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = fincore_journal::JournalConfig::new(dir.path());
    let (first, _) = fincore_journal::Journal::open(config.clone()).unwrap();
    let second = fincore_journal::Journal::open(config.clone());
    let error = second.err().expect("a second writer must be refused").to_string();
    assert!(error.contains("locked"), "{error}");
    drop(first);
    // The lock goes with the writer.
    fincore_journal::Journal::open(config).unwrap();
}

/// An `fsync` journal in `dir/journal` that logs its synced sequences to a file, and a
/// reader of that log.
fn fsync_with_synced_log(dir: &std::path::Path) -> (Journal, impl Fn() -> Vec<u64>) {
    let log = dir.join("synced.log");
    let config = JournalConfig {
        durability: Durability::Fsync,
        synced_log: Some(log.clone()),
        ..config(&dir.join("journal"), SEGMENT_SIZE_MIN)
    };
    let (journal, _) = Journal::open(config).unwrap();
    let logged = move || -> Vec<u64> {
        std::fs::read_to_string(&log).unwrap().lines().map(|l| l.parse().unwrap()).collect()
    };
    (journal, logged)
}

#[test]
fn synced_log_never_runs_ahead_of_the_device_nor_behind_what_is_reported_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, logged) = fsync_with_synced_log(dir.path());
    for seq in 1..=2_000 {
        journal.append(&meta(seq), &payload(seq, 120, 0)).unwrap();
        if seq % 100 == 0 {
            journal.publish();
            assert!(journal.wait_durable(seq, WAIT));
            // Whatever is reported durable was logged first.
            assert!(*logged().last().unwrap() >= seq, "durable {seq} not in the synced log");
        }
    }
    journal.append(&meta(2_001), b"appended, never published").unwrap();
    let before_close = logged();
    assert!(before_close.windows(2).all(|w| w[0] <= w[1]), "the log only moves forward");
    assert_eq!(*before_close.last().unwrap(), 2_000, "an unpublished record is not logged");
    journal.close().unwrap();
    assert_eq!(*logged().last().unwrap(), 2_001, "close syncs and logs everything");
}

#[test]
fn fsync_mode_syncs_a_segment_before_the_next_one_is_named() {
    // After an OS crash, recovery takes a torn tail only in the last segment: a new
    // segment must never be on the device ahead of the old one's last records.
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    let (mut journal, logged) = fsync_with_synced_log(dir.path());
    let mut seq = 0;
    while list_segments(&journal_dir).unwrap().len() < 3 {
        seq += 1;
        journal.append(&meta(seq), &payload(seq, 300, 0)).unwrap();
    }
    // Nothing was published: only the roll-overs synced anything.
    assert_eq!(journal.durable_seq(), 0);
    let synced = logged();
    let sealed_ends: Vec<u64> =
        list_segments(&journal_dir).unwrap()[1..].iter().map(|(first, _)| first - 1).collect();
    for end in sealed_ends {
        assert!(synced.contains(&end), "segment ending at {end} synced at its roll: {synced:?}");
    }
}
