//! Journal throughput; one element is one record.
//!
//! - `baseline/{64,256}`: what an append costs without the file: encode the header,
//!   chain the CRC32C and copy the record into a reused 64 MiB buffer. The gap to
//!   `append/process` is the memory map (page faults on fresh pages, segment roll-over).
//! - `append/process/{64,256}`: `Journal::append` with 64- and 256-byte payloads in
//!   `process` mode, default 256 MiB segments, roll-over included. Samples append to
//!   the same journal in a temporary directory, replaced (outside the timing) after
//!   1 GiB so that a run needs little disk space.
//! - `append/fsync_group256/{64,256}`: the same in `fsync` mode with the flusher
//!   running, `publish` after every 256 appends (group commit), and the sample ending
//!   only when its last record is durable (`wait_durable`), so it measures records made
//!   durable per second, not just copied.
//! - `read/{64,256}`: a `JournalReader` from sequence 1 over 300 000 records in 16 MiB
//!   segments, verifying every checksum, the chain and the sequence (replay without the
//!   engine). Reaching the end includes checking that the rest of the last segment is
//!   zero, which is why the segments here are small.
//!
//! - `crc/{crate,journal}/{32,96,1024}`: one CRC32C call over that many bytes,
//!   chained from the previous result, with the `crc32c` crate and with the journal's
//!   own short-input path (`fincore_journal::checksum`), which the journal uses for
//!   records. 96 bytes is a 64-byte payload with its 32 bytes of header fields.
//!
//! Run: `cargo bench -p fincore-journal --bench append` (2 to 7 s per benchmark, about a
//! minute in all on the 2-core test machine).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fincore_journal::record::{encode_meta, record_crc, record_len};
use fincore_journal::{Durability, Journal, JournalConfig, JournalReader, RecordMeta};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Payload sizes measured: a typical command, and a large one.
const PAYLOAD_LENS: [usize; 2] = [64, 256];

/// Records per `publish` in fsync mode (the engine thread publishes once per batch).
const GROUP: u64 = 256;

/// Records in the journal the read benchmark replays.
const READ_RECORDS: u64 = 300_000;

fn meta(seq: u64) -> RecordMeta {
    RecordMeta { seq, time_ns: seq * 1_000, user: 7, session: 3, peer: 0xFEED }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8 | 1).collect()
}

/// A journal appended to across samples; replaced (outside the timing) once it holds
/// `BYTES_MAX`, which bounds the disk space a run uses.
struct Appender {
    durability: Durability,
    payload: Vec<u8>,
    /// The journal, then its directory (dropped in that order).
    open: Option<(Journal, tempfile::TempDir)>,
}

/// Journal bytes after which the append benchmarks start a fresh journal.
const BYTES_MAX: u64 = 1 << 30;

impl Appender {
    fn new(durability: Durability, len: usize) -> Appender {
        Appender { durability, payload: payload(len), open: None }
    }

    /// Times `iters` appends; in fsync mode, until the last of them is durable.
    fn run(&mut self, iters: u64) -> Duration {
        let records_max = BYTES_MAX / record_len(self.payload.len()) as u64;
        if self.open.as_ref().is_none_or(|(journal, _)| journal.next_seq() + iters > records_max) {
            self.open = None;
            let dir = tempfile::tempdir().expect("temporary directory");
            let config =
                JournalConfig { durability: self.durability, ..JournalConfig::new(dir.path()) };
            self.open = Some((Journal::open(config).expect("open").0, dir));
        }
        let (journal, _) = self.open.as_mut().expect("opened above");
        let fsync = self.durability == Durability::Fsync;
        let first = journal.next_seq();
        let started = Instant::now();
        for seq in first..first + iters {
            journal.append(&meta(seq), black_box(&self.payload)).expect("append");
            if fsync && seq % GROUP == 0 {
                journal.publish();
            }
        }
        if fsync {
            journal.publish();
            let durable = journal.wait_durable(journal.last_seq(), Duration::from_secs(120));
            assert!(durable, "durable");
        }
        started.elapsed()
    }
}

fn baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    group.sample_size(10).warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    for len in PAYLOAD_LENS {
        group.throughput(Throughput::Elements(1));
        let payload = payload(len);
        // Touched up front, so the baseline takes no page faults.
        let mut buffer = vec![1u8; 64 << 20];
        let (mut offset, mut chain, mut seq) = (0usize, 0u32, 0u64);
        group.bench_function(BenchmarkId::from_parameter(len), |b| {
            b.iter(|| {
                seq += 1;
                let total = record_len(len);
                if offset + total > buffer.len() {
                    offset = 0;
                }
                let meta = encode_meta(&meta(seq));
                chain = record_crc(chain, &meta, black_box(&payload));
                buffer[offset + 8..offset + 40].copy_from_slice(&meta);
                buffer[offset + 40..offset + 40 + len].copy_from_slice(&payload);
                buffer[offset + 4..offset + 8].copy_from_slice(&chain.to_le_bytes());
                buffer[offset..offset + 4].copy_from_slice(&(len as u32).to_le_bytes());
                offset += total;
            })
        });
        black_box(&buffer);
    }
    group.finish();
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    for (name, durability) in
        [("process", Durability::Process), ("fsync_group256", Durability::Fsync)]
    {
        for len in PAYLOAD_LENS {
            let mut appender = Appender::new(durability, len);
            group.bench_function(BenchmarkId::new(name, len), |b| {
                b.iter_custom(|iters| appender.run(iters))
            });
        }
    }
    group.finish();
}

/// Writes the journal the read benchmark replays.
fn prepare_read(dir: &Path, len: usize) {
    let config = JournalConfig { segment_size: 16 << 20, ..JournalConfig::new(dir) };
    let (mut journal, _) = Journal::open(config).expect("open");
    let payload = payload(len);
    for seq in 1..=READ_RECORDS {
        journal.append(&meta(seq), &payload).expect("append");
    }
    journal.close().expect("close");
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group.sample_size(10).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(READ_RECORDS));
    for len in PAYLOAD_LENS {
        let dir = tempfile::tempdir().expect("temporary directory");
        prepare_read(dir.path(), len);
        group.bench_function(BenchmarkId::from_parameter(len), |b| {
            b.iter(|| {
                let mut reader = JournalReader::open(dir.path(), 1).expect("open");
                let (mut records, mut bytes) = (0u64, 0usize);
                while let Some(record) = reader.next().expect("intact") {
                    records += 1;
                    bytes += black_box(record.payload).len();
                }
                assert_eq!(records, READ_RECORDS);
                bytes
            })
        });
    }
    group.finish();
}

fn crc(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc");
    group.sample_size(20).warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    type Crc = fn(u32, &[u8]) -> u32;
    let implementations: [(&str, Crc); 2] =
        [("crate", crc32c::crc32c_append), ("journal", fincore_journal::checksum::crc32c_append)];
    for len in [32, 96, 1024] {
        let bytes = payload(len);
        for (name, crc) in implementations {
            let mut chain = 0u32;
            group.bench_function(BenchmarkId::new(name, len), |b| {
                b.iter(|| {
                    chain = crc(chain, black_box(&bytes));
                    chain
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, baseline, append, read, crc);
criterion_main!(benches);
