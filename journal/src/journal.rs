//! The writer: appends records to the current segment, rolls to a new one when full,
//! recovers the tail on open, and (in `fsync` mode) runs the group-commit flusher.

use crate::checksum;
use crate::error::JournalError;
use crate::map::{ReadMap, SegmentMap};
use crate::prepare::{Prepared, Preparer, remove_leftovers};
use crate::reader::TornTail;
use crate::record::{self, PAYLOAD_LEN_MAX, RecordMeta};
use crate::scan::{ScanEnd, ScanState, may_be_torn_tail};
use crate::segment::{
    SEGMENT_HEADER_LEN, SegmentHeader, create_segment, list_segments, replace_segment,
    segment_path, sync_dir,
};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default segment size: 256 MiB holds about 3 million commands of the benchmarks' trading
/// mix (docs/JOURNAL.md).
pub const SEGMENT_SIZE_DEFAULT: u64 = 256 * 1024 * 1024;

/// Smallest segment size accepted: room for the header and one maximal record.
pub const SEGMENT_SIZE_MIN: u64 = 4096 + (PAYLOAD_LEN_MAX as u64) * 2;

/// What an acknowledged record survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Records are in the mapped pages (the kernel's page cache) once appended: they
    /// survive the process being killed, not the machine losing power.
    Process,
    /// A flusher thread syncs the mapped pages to the device (msync) as soon as there is
    /// unsynced data; everything appended while one sync runs is covered by the next
    /// (group commit). `wait_durable(n)` returns once record n is on the device: it then
    /// survives an OS crash or power loss.
    Fsync,
}

/// How to open a journal.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// Directory of the segment files (created if missing).
    pub dir: PathBuf,
    /// Size of each segment file.
    pub segment_size: u64,
    /// Durability mode.
    pub durability: Durability,
    /// Fault-injection aid for tests: a file to which a line `<seq>` is appended each
    /// time everything through `seq` is on the device (after the sync, before anything
    /// is reported durable), so that a test can cut the journal back to what an OS
    /// crash would have left. `None` (the default) writes nothing.
    pub synced_log: Option<PathBuf>,
    /// What the payloads are, in the caller's terms: stored in the header of every
    /// segment this writer starts and reported with every record read back
    /// ([`crate::Record::payload_format`]); the journal never interprets it. All records
    /// of a segment share one format: opening a journal whose last segment has another
    /// one starts a new segment (or, if that segment holds no records, replaces it).
    /// Default 0.
    pub payload_format: u32,
    /// The formats, besides `payload_format`, that the caller can read. Opening a
    /// journal whose last segment holds another format is refused
    /// ([`JournalError::UnknownFormat`]) before any segment is added or replaced, so a
    /// build that cannot read a newer build's journal leaves it as it found it. `None`
    /// (the default) accepts any format.
    pub readable_formats: Option<&'static [u32]>,
}

impl JournalConfig {
    /// Defaults: 256 MiB segments, `process` durability, payload format 0.
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            segment_size: SEGMENT_SIZE_DEFAULT,
            durability: Durability::Process,
            synced_log: None,
            payload_format: 0,
            readable_formats: None,
        }
    }
}

/// What opening the journal found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files present after recovery.
    pub segments: usize,
    /// Sequence of the last intact record (0 for an empty journal).
    pub last_seq: u64,
    /// A torn or damaged last record that was cut off (at most one can exist).
    pub torn_tail: Option<TornTail>,
    /// Bytes of an unfinished write (no length published yet) that were cleared.
    pub cleared_bytes: u64,
    /// A segment whose creation never finished (no header, all zero) that was removed.
    pub removed_segment: Option<PathBuf>,
}

/// Progress the writer has published, for the flusher.
struct Watermark {
    seq: u64,
    map: Arc<SegmentMap>,
    end: usize,
}

struct FlushState {
    published: Watermark,
    /// Segments finished since the flusher last ran; they must be synced whole.
    sealed: Vec<Arc<SegmentMap>>,
    stop: bool,
}

struct Shared {
    state: Mutex<FlushState>,
    wake_flusher: Condvar,
    durable_changed: Condvar,
    durable_seq: AtomicU64,
    failed: AtomicBool,
    /// See [`JournalConfig::synced_log`].
    synced_log: Option<std::fs::File>,
}

impl Shared {
    /// Records in the synced log (if any) that everything through `seq` is on the
    /// device. A failed write is ignored: the log is a test aid, not part of the data.
    fn note_synced(&self, seq: u64) {
        if let Some(mut file) = self.synced_log.as_ref() {
            let _ = std::io::Write::write_all(&mut file, format!("{seq}\n").as_bytes());
        }
    }
}

/// An open journal: the single writer of its directory.
pub struct Journal {
    config: JournalConfig,
    map: Arc<SegmentMap>,
    offset: usize,
    chain_crc: u32,
    next_seq: u64,
    /// Bytes of records appended since open (headers and padding included).
    appended_bytes: u64,
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    /// Prepares the next segment file ahead of the roll-over (`None` if its thread
    /// could not start: roll-overs then create the file themselves).
    preparer: Option<Preparer>,
    /// The preparer was asked for the segment after the active one.
    next_requested: bool,
    /// Scratch for the checksummed part of a record (grows to the largest payload once).
    body: Vec<u8>,
    /// Set by a failed roll-over: the journal's files may no longer continue each other,
    /// so every later append is refused.
    broken: Option<String>,
    /// Held for the journal's lifetime: one writer per directory.
    _lock: std::fs::File,
}

impl Journal {
    /// Opens (or creates) the journal in `config.dir`, recovering its tail: a torn or
    /// damaged last record is cut off and reported; damage anywhere else in the last
    /// segment is an error naming file and offset. Earlier segments were sealed when the
    /// writer moved on; `verify` (or any reader) checks them.
    pub fn open(config: JournalConfig) -> Result<(Journal, Recovery), JournalError> {
        if config.segment_size < SEGMENT_SIZE_MIN || config.segment_size > u32::MAX as u64 * 16 {
            return Err(JournalError::Config(format!(
                "segment size {} out of range",
                config.segment_size
            )));
        }
        std::fs::create_dir_all(&config.dir).map_err(|e| JournalError::io(&config.dir, e))?;
        let lock = lock_dir(&config.dir)?;
        remove_leftovers(&config.dir).map_err(|e| JournalError::io(&config.dir, e))?;
        let mut recovery = Recovery::default();
        let mut segments = list_segments(&config.dir)?;
        let unborn = match segments.last() {
            Some((_, path)) => is_unborn_segment(path)?.then(|| path.clone()),
            None => None,
        };
        if let Some(path) = unborn {
            std::fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
            recovery.removed_segment = Some(path);
            segments.pop();
        }
        let (mut map, state, found_format) = match segments.last() {
            None => {
                let header = SegmentHeader {
                    first_seq: 1,
                    size: config.segment_size,
                    chain_crc: 0,
                    payload_format: config.payload_format,
                };
                let (file, path) = create_segment(&config.dir, &header)?;
                let map = SegmentMap::map(&file).map_err(|e| JournalError::io(&path, e))?;
                segments.push((1, path));
                (map, ScanState::start(1, 0), config.payload_format)
            }
            Some((first_seq, path)) => {
                recover_segment(path, *first_seq, config.payload_format, &mut recovery)?
            }
        };
        // A segment's records share one payload format. A last segment of another
        // format is replaced if it holds no records, else followed by a new segment
        // right after open (below). docs/JOURNAL.md section 5, step 8.
        let readable = |format| {
            format == config.payload_format
                || config.readable_formats.is_none_or(|formats| formats.contains(&format))
        };
        if !readable(found_format) {
            let path = segments.last().expect("found above").1.clone();
            return Err(JournalError::UnknownFormat { path, format: found_format });
        }
        let mut roll_now = false;
        if found_format != config.payload_format {
            let first_seq = segments.last().expect("found above").0;
            if state.next_seq == first_seq {
                drop(map);
                let header = SegmentHeader {
                    first_seq,
                    size: config.segment_size,
                    chain_crc: state.chain_crc,
                    payload_format: config.payload_format,
                };
                let temp = crate::prepare::temp_path(&config.dir, "format");
                let (file, path) = replace_segment(&config.dir, &header, &temp)?;
                map = SegmentMap::map(&file).map_err(|e| JournalError::io(&path, e))?;
            } else {
                roll_now = true;
            }
        }
        recovery.segments = segments.len() + usize::from(roll_now);
        if config.durability == Durability::Fsync {
            // Reported durable below: a previous run (in `process` mode, or killed) may
            // have left pages only in the page cache.
            sync_written(&map, state.offset, &segments, &config.dir)?;
        }
        recovery.last_seq = state.next_seq - 1;
        let synced_log = match &config.synced_log {
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| JournalError::io(path, e))?,
            ),
            None => None,
        };
        let map = Arc::new(map);
        let shared = Arc::new(Shared {
            state: Mutex::new(FlushState {
                published: Watermark {
                    seq: state.next_seq - 1,
                    map: Arc::clone(&map),
                    end: state.offset,
                },
                sealed: Vec::new(),
                stop: false,
            }),
            wake_flusher: Condvar::new(),
            durable_changed: Condvar::new(),
            durable_seq: AtomicU64::new(state.next_seq - 1),
            failed: AtomicBool::new(false),
            synced_log,
        });
        if config.durability == Durability::Fsync {
            shared.note_synced(state.next_seq - 1);
        }
        let flusher = match config.durability {
            Durability::Process => None,
            Durability::Fsync => {
                let shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name("journal-flusher".into())
                    .spawn(move || flush_loop(&shared));
                Some(spawned.map_err(|e| JournalError::io(&config.dir, e))?)
            }
        };
        let (config_dir, segment_size) = (config.dir.clone(), config.segment_size);
        let mut journal = Journal {
            config,
            map,
            offset: state.offset,
            chain_crc: state.chain_crc,
            next_seq: state.next_seq,
            appended_bytes: 0,
            shared,
            flusher,
            preparer: Preparer::start(&config_dir, segment_size).ok(),
            next_requested: false,
            broken: None,
            _lock: lock,
            body: Vec::with_capacity(record::RECORD_HEADER_LEN + 256),
        };
        if roll_now {
            // The new segment's name must not reach the device ahead of the records
            // it follows, in either mode: after an OS crash, records lost behind a later
            // segment are damage, not a torn tail. A roll-over syncs them in `fsync`
            // mode; in `process` mode this one (once per change of format) does.
            if journal.config.durability == Durability::Process {
                let end = journal.offset;
                journal.map.sync(0, end).map_err(|e| JournalError::io(&journal.config.dir, e))?;
            }
            journal.roll()?;
        }
        Ok((journal, recovery))
    }

    /// The sequence the next record must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes of records appended since this journal was opened (headers and padding
    /// included): what the metrics report as journal bytes written.
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes
    }

    /// The sequence of the last appended record (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The chained checksum of the last appended record (0 if none): what a snapshot at
    /// [`Journal::last_seq`] records to tie itself to this history.
    pub fn last_crc(&self) -> u32 {
        self.chain_crc
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.config.durability
    }

    /// Appends one record. `meta.seq` must be [`Journal::next_seq`]; the payload must be
    /// 1 to [`PAYLOAD_LEN_MAX`] bytes. The record is complete in the mapped pages when
    /// this returns (its length is stored last, with release ordering).
    pub fn append(&mut self, meta: &RecordMeta, payload: &[u8]) -> Result<(), JournalError> {
        if payload.is_empty() || payload.len() > PAYLOAD_LEN_MAX {
            // Refused before it is copied (`append_with` checks after writing).
            return Err(JournalError::InvalidAppend(format!("payload of {} bytes", payload.len())));
        }
        self.append_with(meta, |out| out.extend_from_slice(payload))
    }

    /// [`Journal::append`] of the payload that `write` appends to the vector it is given:
    /// the caller encodes straight into the record instead of into a buffer of its own
    /// that is then copied. The vector already holds the record's header fields; they
    /// are written again after `write` returns, so nothing `write` does to the bytes
    /// before the payload reaches the record. `write` is not called if the sequence is
    /// wrong or the journal is unusable; a payload it leaves empty or larger than
    /// [`PAYLOAD_LEN_MAX`] is refused, and nothing is written.
    pub fn append_with(
        &mut self,
        meta: &RecordMeta,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), JournalError> {
        if let Some(why) = &self.broken {
            return Err(JournalError::InvalidAppend(format!("journal unusable after: {why}")));
        }
        if meta.seq != self.next_seq {
            return Err(JournalError::InvalidAppend(format!(
                "seq {} but the next is {}",
                meta.seq, self.next_seq
            )));
        }
        // The checksummed part (header fields and payload) is assembled once so that it
        // takes one CRC call and one copy: for ~100-byte records the per-call overhead
        // of the CRC was a quarter of the append time.
        const META_LEN: usize = record::RECORD_HEADER_LEN - 8;
        let fields = record::encode_meta(meta);
        self.body.clear();
        self.body.extend_from_slice(&fields);
        write(&mut self.body);
        let payload_len = self.body.len().saturating_sub(META_LEN);
        if payload_len == 0 || payload_len > PAYLOAD_LEN_MAX {
            // A refused giant payload does not keep its memory.
            self.body.clear();
            self.body.shrink_to(record::RECORD_HEADER_LEN + 256);
            return Err(JournalError::InvalidAppend(format!("payload of {payload_len} bytes")));
        }
        self.body[..META_LEN].copy_from_slice(&fields);
        let total = record::record_len(payload_len);
        if !self.next_requested && self.offset * 2 > self.map.len() {
            if let Some(preparer) = &self.preparer {
                preparer.want();
            }
            self.next_requested = true;
        }
        let rolled = if self.offset + total > self.map.len() { self.roll() } else { Ok(()) };
        if let Err(error) = rolled {
            self.broken = Some(error.to_string());
            return Err(error);
        }
        let crc = checksum::crc32c_append(self.chain_crc, &self.body);
        // Body first, length last: a reader or a recovery scan never sees a length
        // whose body is not complete. The padding is already zero (fresh or cleared).
        self.map.write(self.offset + 8, &self.body);
        self.map.write(self.offset + 4, &crc.to_le_bytes());
        self.map.publish_len(self.offset, payload_len as u32);
        self.offset += total;
        self.chain_crc = crc;
        self.next_seq += 1;
        self.appended_bytes += total as u64;
        Ok(())
    }

    /// Starts a new segment at the next sequence.
    fn roll(&mut self) -> Result<(), JournalError> {
        if self.config.durability == Durability::Fsync {
            // In `fsync` mode the next segment's name never reaches the device ahead of
            // this segment's last records: recovery takes a torn tail only in the last
            // segment, so an OS crash right after a roll-over that found the new (empty)
            // segment behind an unsynced old one refused to start (found by the crash
            // simulator, tools/tests/simulation.rs). One sync per segment: the flusher
            // has synced most of it already.
            self.map.sync(0, self.offset).map_err(|e| JournalError::io(&self.config.dir, e))?;
            self.shared.note_synced(self.next_seq - 1);
        }
        let header = SegmentHeader {
            first_seq: self.next_seq,
            size: self.config.segment_size,
            chain_crc: self.chain_crc,
            payload_format: self.config.payload_format,
        };
        let map = match self.preparer.as_ref().and_then(Preparer::take) {
            Some(prepared) => self.adopt(prepared, &header)?,
            // The preparer is behind (appends outran it) or unavailable. Faulting in
            // the whole segment here would stop appending for as long as that takes
            // (0.35 - 0.9 s for 256 MiB on the benchmark machine, 0.54 s measured on
            // the engine thread at 1 M commands/s); first writes fault in one page at
            // a time instead, spreading the same work over the segment.
            None => match create_segment(&self.config.dir, &header) {
                Ok((file, path)) => {
                    SegmentMap::map_lazily(&file).map_err(|e| JournalError::io(&path, e))?
                }
                // No room: the preparer's file in flight, if any, may hold what there
                // was; wait for it rather than fail beside it.
                Err(error @ JournalError::Reserve { .. }) => {
                    match self.preparer.as_ref().and_then(Preparer::take_when_done) {
                        Some(prepared) => self.adopt(prepared, &header)?,
                        None => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            },
        };
        let sealed = std::mem::replace(&mut self.map, Arc::new(map));
        if self.flusher.is_some() {
            self.shared.state.lock().expect("flusher never panics").sealed.push(sealed);
        } else if let Some(preparer) = &self.preparer {
            preparer.retire(sealed);
        }
        self.offset = SEGMENT_HEADER_LEN;
        self.next_requested = false;
        Ok(())
    }

    /// Turns a prepared file into the next segment: header written and synced, then
    /// renamed to its segment name, and the directory synced.
    fn adopt(
        &self,
        prepared: Prepared,
        header: &SegmentHeader,
    ) -> Result<SegmentMap, JournalError> {
        let path = segment_path(&self.config.dir, header.first_seq);
        prepared.map.write(0, &header.encode());
        prepared
            .map
            .sync(0, SEGMENT_HEADER_LEN)
            .map_err(|e| JournalError::io(&prepared.path, e))?;
        std::fs::rename(&prepared.path, &path).map_err(|e| JournalError::io(&path, e))?;
        sync_dir(&self.config.dir)?;
        drop(prepared.file);
        Ok(prepared.map)
    }

    /// Makes everything appended so far eligible for durability: in `process` mode it
    /// is durable now; in `fsync` mode the flusher is woken. Call once per batch.
    pub fn publish(&self) {
        let seq = self.next_seq - 1;
        // By mode, not by whether the flusher runs: once `close` or `drop` stopped it, a
        // publish in `fsync` mode must not report anything durable.
        if self.config.durability == Durability::Process {
            let _guard = self.shared.state.lock().expect("flusher never panics");
            self.shared.durable_seq.store(seq, Ordering::Release);
            self.shared.durable_changed.notify_all();
            return;
        }
        let mut state = self.shared.state.lock().expect("flusher never panics");
        state.published = Watermark { seq, map: Arc::clone(&self.map), end: self.offset };
        drop(state);
        self.shared.wake_flusher.notify_one();
    }

    /// The highest sequence that is durable in this journal's mode.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// Waits until record `seq` is durable, or `timeout` passes; true if it is.
    pub fn wait_durable(&self, seq: u64, timeout: Duration) -> bool {
        durable_waiter(&self.shared)(seq, timeout)
    }

    /// A handle other threads can use to wait for durability.
    pub fn durability_handle(&self) -> DurabilityHandle {
        DurabilityHandle { shared: Arc::clone(&self.shared) }
    }

    /// Syncs everything appended to the device (either mode) and stops the flusher.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.publish();
        self.stop_flusher();
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(JournalError::Config("the flusher failed to sync a segment".into()));
        }
        self.sync_written()?;
        self.shared.note_synced(self.next_seq - 1);
        self.shared.durable_seq.store(self.next_seq - 1, Ordering::Release);
        Ok(())
    }

    /// Puts everything appended so far on the device, in either mode, and waits for it:
    /// used before a snapshot, which must never be durable ahead of the journal.
    pub fn sync_to_device(&self) -> Result<(), JournalError> {
        self.publish();
        self.sync_written()?;
        self.shared.note_synced(self.next_seq - 1);
        Ok(())
    }

    /// [`sync_written`] of this journal's records.
    fn sync_written(&self) -> Result<(), JournalError> {
        let segments = list_segments(&self.config.dir)?;
        sync_written(&self.map, self.offset, &segments, &self.config.dir)
    }

    fn stop_flusher(&mut self) {
        if let Some(handle) = self.flusher.take() {
            self.shared.state.lock().expect("flusher never panics").stop = true;
            self.shared.wake_flusher.notify_one();
            let _ = handle.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.publish();
        self.stop_flusher();
    }
}

/// Lets another thread (the gateway) wait until a sequence is durable.
#[derive(Clone)]
pub struct DurabilityHandle {
    shared: Arc<Shared>,
}

impl DurabilityHandle {
    /// The highest durable sequence.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// Waits until `seq` is durable or `timeout` passes; true if it is.
    pub fn wait_durable(&self, seq: u64, timeout: Duration) -> bool {
        durable_waiter(&self.shared)(seq, timeout)
    }

    /// True once a sync failed (`fsync` mode): the durable sequence will not advance
    /// any more, and the journal must be treated as broken.
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }
}

fn durable_waiter(shared: &Shared) -> impl Fn(u64, Duration) -> bool + '_ {
    move |seq, timeout| {
        let deadline = Instant::now() + timeout;
        let mut state = shared.state.lock().expect("flusher never panics");
        while shared.durable_seq.load(Ordering::Acquire) < seq {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state =
                shared.durable_changed.wait_timeout(state, deadline - now).expect("no panics").0;
        }
        true
    }
}

/// The group-commit loop: sync whatever was published since the last sync, publish the
/// new durable sequence, sleep until woken.
fn flush_loop(shared: &Shared) {
    let mut synced_map: Option<Arc<SegmentMap>> = None;
    let mut synced_end = 0usize;
    loop {
        let mut state = shared.state.lock().expect("no panics");
        while state.published.seq <= shared.durable_seq.load(Ordering::Acquire)
            && state.sealed.is_empty()
            && !state.stop
        {
            state = shared.wake_flusher.wait(state).expect("no panics");
        }
        let stop = state.stop;
        let sealed = std::mem::take(&mut state.sealed);
        let (seq, map, end) =
            (state.published.seq, Arc::clone(&state.published.map), state.published.end);
        drop(state);
        let mut ok = true;
        for segment in &sealed {
            ok &= segment.sync(0, segment.len()).is_ok();
        }
        let from = match &synced_map {
            Some(previous) if Arc::ptr_eq(previous, &map) => synced_end.min(end),
            _ => 0,
        };
        ok &= map.sync(from, end - from).is_ok();
        // After a failed sync the kernel may have dropped the dirty state of the pages it
        // could not write, so a later sync can succeed without them: once one has failed,
        // nothing more is reported durable.
        ok &= !shared.failed.load(Ordering::Acquire);
        if ok {
            shared.note_synced(seq);
            synced_map = Some(map);
            synced_end = end;
            let _guard = shared.state.lock().expect("no panics");
            shared.durable_seq.fetch_max(seq, Ordering::AcqRel);
            shared.durable_changed.notify_all();
        } else {
            // A failed sync must never be reported durable: keep the old watermark, flag
            // it so the owner can stop acknowledging, and stop (retrying would spin).
            shared.failed.store(true, Ordering::Release);
            return;
        }
        if stop {
            return;
        }
    }
}

/// Puts every record on the device and waits: `active`'s first `written` bytes (the
/// newest of `segments`), then the sealed segments (`process` mode never synced them,
/// the flusher did in `fsync` mode; syncing a file without dirty pages is cheap). The
/// rest of the active segment is left alone: its pages were faulted in for writing
/// when it was created (`SegmentMap::map`), which marks them dirty, and syncing the
/// whole file would write up to a segment of zeros at every stop and snapshot.
fn sync_written(
    active: &SegmentMap,
    written: usize,
    segments: &[(u64, PathBuf)],
    dir: &Path,
) -> Result<(), JournalError> {
    active.sync(0, written).map_err(|e| JournalError::io(dir, e))?;
    sync_files(sealed(segments))
}

/// All but the newest of the listed segments: the sealed ones.
fn sealed(segments: &[(u64, PathBuf)]) -> &[(u64, PathBuf)] {
    segments.split_last().map_or(&[], |(_, sealed)| sealed)
}

/// Syncs the data of every listed segment file (cheap for files without dirty pages).
fn sync_files(segments: &[(u64, PathBuf)]) -> Result<(), JournalError> {
    for (_, path) in segments {
        let synced = std::fs::File::open(path).and_then(|file| file.sync_data());
        synced.map_err(|e| JournalError::io(path, e))?;
    }
    Ok(())
}

/// Name of the lock file that makes a writer exclusive.
pub const LOCK_FILE: &str = "LOCK";

/// Takes the directory's exclusive writer lock (released when the file is closed,
/// including by the process dying). A second writer would interleave records.
fn lock_dir(dir: &Path) -> Result<std::fs::File, JournalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path);
    let file = file.map_err(|e| JournalError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Config(format!(
            "{} is locked: another process is writing this journal",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(JournalError::io(&path, e)),
    }
}

/// True for a last segment whose creation never finished: no valid header and nothing
/// but zeros (the crash hit between creating the file and writing its header).
fn is_unborn_segment(path: &Path) -> Result<bool, JournalError> {
    let file = std::fs::File::open(path).map_err(|e| JournalError::io(path, e))?;
    let map = ReadMap::map(&file).map_err(|e| JournalError::io(path, e))?;
    let bytes = map.bytes();
    Ok(SegmentHeader::decode(bytes).is_err() && bytes.iter().all(|b| *b == 0))
}

/// Scans the last segment, cuts a torn tail, and returns its writable map and the
/// position to append at.
fn recover_segment(
    path: &Path,
    name_seq: u64,
    payload_format: u32,
    recovery: &mut Recovery,
) -> Result<(SegmentMap, ScanState, u32), JournalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| JournalError::io(path, e))?;
    // A sparse segment that will be appended to is reserved first, before anything is
    // mapped: its room is found now, not by a `SIGBUS` at an append (or, on tmpfs,
    // where reading a hole allocates, at the scan below).
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    let head = std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).map(|()| head);
    if let Some(header) = head.ok().and_then(|head| SegmentHeader::decode(&head).ok())
        && header.payload_format == payload_format
        && header.first_seq == name_seq
        // (`fallocate` would lengthen a file cut short, which the check below refuses.)
        && file.metadata().is_ok_and(|m| m.len() == header.size)
    {
        crate::segment::reserve_existing(&file, path, header.size)?;
    }
    let read = ReadMap::map(&file).map_err(|e| JournalError::io(path, e))?;
    let bytes = read.bytes();
    let header = SegmentHeader::decode(bytes).map_err(|r| JournalError::corrupt(path, 0, r))?;
    if header.first_seq != name_seq || header.size != bytes.len() as u64 {
        return Err(JournalError::corrupt(path, 0, "header does not match the file name or size"));
    }
    let mut state = ScanState::start(header.first_seq, header.chain_crc);
    let end = crate::scan::walk(bytes, &mut state, |_| {});
    let cut_from = state.offset;
    let dirty = !bytes[cut_from..].iter().all(|b| *b == 0);
    match end {
        ScanEnd::Clean if !dirty => {}
        ScanEnd::Clean if may_be_torn_tail(bytes, &state) => {
            // An append that stopped before publishing its length: not a record.
            recovery.cleared_bytes = last_nonzero(bytes).map_or(0, |i| (i + 1 - cut_from) as u64);
        }
        ScanEnd::Fault { offset, fault } if may_be_torn_tail(bytes, &state) => {
            recovery.torn_tail = Some(TornTail {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason: fault.to_string(),
            });
        }
        ScanEnd::Clean => {
            return Err(JournalError::corrupt(
                path,
                cut_from as u64,
                "non-zero bytes beyond the last record",
            ));
        }
        ScanEnd::Fault { offset, fault } => {
            return Err(JournalError::corrupt(
                path,
                offset as u64,
                format!("{fault}, and records follow it"),
            ));
        }
    }
    let clear_to = last_nonzero(bytes).map_or(cut_from, |i| (i + 1).max(cut_from));
    drop(read);
    // A segment of another payload format gets no more records (`Journal::open`
    // replaces or follows it): faulting all of it in for writing would only dirty pages
    // that a sync then writes back as zeros.
    let map = if header.payload_format == payload_format {
        SegmentMap::map(&file)
    } else {
        SegmentMap::map_lazily(&file)
    };
    let map = map.map_err(|e| JournalError::io(path, e))?;
    if clear_to > cut_from {
        map.zero(cut_from, clear_to - cut_from);
        map.sync(cut_from, clear_to - cut_from).map_err(|e| JournalError::io(path, e))?;
    }
    Ok((map, state, header.payload_format))
}

fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|b| *b != 0)
}
