//! The body of every fuzz target: a plain function of the input bytes, without any
//! libFuzzer dependency, so that the same code runs under `cargo +nightly fuzz` (through
//! the thin wrappers in `fuzz/fuzz_targets/`) and in the corpus replay of the normal test
//! run (`tools/tests/fuzz_corpus.rs` includes this file by path).
//!
//! A target never fails on bad input by itself: decoders and loaders must answer with
//! an error, never a panic. The assertions here are the properties the code under test
//! promises for the inputs it does accept (a decoded value re-encodes to the same bytes,
//! a recovered journal reads back to its new end, a restored or mutated engine passes
//! every invariant, a rejected command changes nothing). [`seeds`] makes a few valid
//! inputs per target, so that the fuzzer starts past the decoders.

use fincore_engine::ledger::Balance;
use fincore_engine::testkit::{self, PaymentsMix, TradingMix};
use fincore_engine::*;
use fincore_gateway::wire::{self, ClientMsg, Frame, HEADER_LEN, Header, ServerMsg, VERSION};
use fincore_journal::record::{self, RecordMeta};
use fincore_journal::{
    Durability, Journal, JournalConfig, JournalError, JournalReader, SEGMENT_HEADER_LEN,
    SEGMENT_SIZE_MIN, SnapshotStore, TornTail, list_segments, segment_path,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A target body: one input, checked; panics only on a broken promise.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory of its corpus under `fuzz/corpus/`, and the
/// binary under `fuzz/fuzz_targets/`) and its body.
pub const TARGETS: [(&str, Target); 7] = [
    ("frame", frame),
    ("client_msg", client_msg),
    ("server_msg", server_msg),
    ("codec", codec),
    ("journal", journal),
    ("snapshot", snapshot),
    ("engine", engine),
];

// ---- gateway frames and messages ---------------------------------------------------

/// Every client-to-server message type.
const CLIENT_TYPES: [u16; 23] = [
    wire::msg::LOGIN,
    wire::msg::HEARTBEAT,
    wire::msg::LOGOUT,
    wire::msg::NEW_ORDER,
    wire::msg::CANCEL,
    wire::msg::AMEND,
    wire::msg::MASS_CANCEL,
    wire::msg::CREATE_ACCOUNT,
    wire::msg::DEPOSIT,
    wire::msg::WITHDRAW,
    wire::msg::SET_ACCOUNT_STATUS,
    wire::msg::SET_INSTRUMENT_STATUS,
    wire::msg::TAKE_SNAPSHOT,
    wire::msg::QUERY,
    wire::msg::SUBSCRIBE,
    wire::msg::UNSUBSCRIBE,
    wire::msg::TRANSFER,
    wire::msg::AUTHORIZE,
    wire::msg::CAPTURE,
    wire::msg::VOID,
    wire::msg::SET_PAYMENT_LIMITS,
    wire::msg::SET_ACCOUNT_LIMITS,
    wire::msg::SET_ACCOUNT_BLOCKED,
];

/// Every server-to-client message type.
const SERVER_TYPES: [u16; 12] = [
    wire::msg::LOGIN_ACCEPTED,
    wire::msg::LOGIN_REJECTED,
    wire::msg::HEARTBEAT,
    wire::msg::LOGOUT_NOTICE,
    wire::msg::SESSION_REJECT,
    wire::msg::EXEC_REPORT,
    wire::msg::SNAPSHOT_TAKEN,
    wire::msg::MD_SNAPSHOT_LEVEL,
    wire::msg::MD_SNAPSHOT_END,
    wire::msg::MD_TRADE,
    wire::msg::MD_LEVEL,
    wire::msg::MD_UNSUBSCRIBED,
];

/// Target `frame`: the input is a byte stream as a peer would send it. It is split
/// into frames the way the server and the client do, and every whole frame's body is
/// decoded in both directions.
pub fn frame(data: &[u8]) {
    let mut rest = data;
    loop {
        match wire::next_frame(rest) {
            Frame::Incomplete => {
                // Either the header is not all there, or its body is not.
                if let Some(header) = Header::parse(rest) {
                    assert!(HEADER_LEN + header.len as usize > rest.len(), "{header:?}");
                }
                return;
            }
            Frame::Fatal(header, reason) => {
                assert_eq!(header.fatal_problem(), Some(reason));
                return;
            }
            Frame::Complete(header, body) => {
                assert_eq!(header.fatal_problem(), None);
                assert_eq!(body.len(), header.len as usize);
                check_client_body(header.msg_type, header.seq, body);
                check_server_body(header.msg_type, header.seq, body);
                rest = &rest[HEADER_LEN + body.len()..];
            }
        }
    }
}

/// Target `client_msg`: the first byte picks a client message type (values past the
/// known types pick an unknown one), the rest is the body.
pub fn client_msg(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let msg_type = pick_type(&CLIENT_TYPES, selector);
    check_client_body(msg_type, u64::from(selector), body);
    frame(&framed(msg_type, body));
}

/// Target `server_msg`: as [`client_msg`], for the messages the server sends.
pub fn server_msg(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let msg_type = pick_type(&SERVER_TYPES, selector);
    check_server_body(msg_type, u64::from(selector), body);
    frame(&framed(msg_type, body));
}

/// A known type for small selectors; an unknown one (far above every known type) for
/// the rest.
fn pick_type(known: &[u16], selector: u8) -> u16 {
    known.get(usize::from(selector)).copied().unwrap_or(u16::from(selector) * 257)
}

/// `body` behind a valid header of type `msg_type` (the length field says the true
/// length, even past the maximum, which the frame splitter must refuse).
fn framed(msg_type: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&msg_type.to_le_bytes());
    out.extend_from_slice(&[VERSION, 0]);
    out.extend_from_slice(&7u64.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Decodes `body` as a message of type `msg_type`. A known type whose body does not
/// decode must be refused as malformed, an unknown type as unknown; a message that decodes must re-encode to the
/// same bytes under the header the encoder writes.
fn message_round_trip<M>(
    msg_type: u16,
    seq: u64,
    body: &[u8],
    known: &[u16],
    decode: fn(u16, &[u8]) -> Result<M, wire::SessionReason>,
    encode: fn(&M, u64, &mut Vec<u8>),
) -> Option<M> {
    let message = match decode(msg_type, body) {
        Ok(message) => message,
        Err(reason) => {
            let expected = if known.contains(&msg_type) {
                wire::SessionReason::MalformedFrame
            } else {
                wire::SessionReason::UnknownMessageType
            };
            assert_eq!(reason, expected, "type {msg_type}");
            return None;
        }
    };
    let mut out = Vec::new();
    encode(&message, seq, &mut out);
    assert_encoded_frame(&out, msg_type, seq, body);
    Some(message)
}

/// [`message_round_trip`] for client bodies, plus what a decoded client message promises.
fn check_client_body(msg_type: u16, seq: u64, body: &[u8]) {
    let encode: fn(&ClientMsg, u64, &mut Vec<u8>) = |m, seq, out| m.encode_into(seq, out);
    let Some(message) =
        message_round_trip(msg_type, seq, body, &CLIENT_TYPES, ClientMsg::decode, encode)
    else {
        return;
    };
    assert_eq!(message.msg_type(), msg_type);
    // An admin may send everything; whatever a trader may send, an operator may too.
    assert!(message.permitted(Role::Admin));
    if message.permitted(Role::Trader) {
        assert!(message.permitted(Role::Operator));
    }
    let _ = message.client_id();
    if let ClientMsg::Login(login) = message {
        assert!(login.username().len() <= wire::USERNAME_LEN);
        assert!(login.secret().len() <= wire::SECRET_LEN);
    }
}

/// [`message_round_trip`] for server bodies.
fn check_server_body(msg_type: u16, seq: u64, body: &[u8]) {
    let encode: fn(&ServerMsg, u64, &mut Vec<u8>) = |m, seq, out| m.encode_into(seq, out);
    let Some(message) =
        message_round_trip(msg_type, seq, body, &SERVER_TYPES, ServerMsg::decode, encode)
    else {
        return;
    };
    assert_eq!(message.msg_type(), msg_type);
    if let ServerMsg::LoginRejected(code) | ServerMsg::Logout(code) = message {
        let _ = wire::reason_name(code);
    }
}

fn assert_encoded_frame(out: &[u8], msg_type: u16, seq: u64, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("a decoded body fits a frame");
    let header = Header { len, msg_type, version: VERSION, flags: 0, seq };
    assert_eq!(Header::parse(out), Some(header));
    assert_eq!(&out[HEADER_LEN..], body, "type {msg_type} re-encodes to other bytes");
}

// ---- engine codec ------------------------------------------------------------------

/// Target `codec`: the first byte picks `Command`, `Event` or `Query`; the rest is
/// decoded as one. A value that decodes re-encodes to exactly the same bytes, through
/// both encoders, within [`ENCODED_LEN_MAX`].
pub fn codec(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    match selector % 3 {
        0 => round_trip::<Command>(bytes),
        1 => round_trip::<Event>(bytes),
        _ => round_trip::<Query>(bytes),
    }
}

fn round_trip<T: Wire + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let Ok(value) = T::decode(bytes) else { return };
    assert_eq!(value.encode(), bytes, "{value:?} re-encodes to other bytes");
    let mut buffer = [0u8; ENCODED_LEN_MAX];
    let len = value.encode_to_slice(&mut buffer).expect("every value fits ENCODED_LEN_MAX");
    assert_eq!(&buffer[..len], bytes);
}

// ---- journal -------------------------------------------------------------------------

/// Target `journal`: the first byte picks how the rest becomes a journal directory
/// (see [`write_journal`]) and the payload format of the writer that recovers it (the
/// files are written with version 1 headers, format 0); then the directory is read
/// from a sequence, verified from the start, recovered by the writer, appended to and
/// read again. Errors are fine; panics are not; and what the reader, the verifier and
/// the recovery accept must agree.
pub fn journal(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let scratch = Scratch::new();
    let dir = scratch.path();
    let from_seq = write_journal(dir, mode, rest);
    let lenient = read_journal(dir, 1);
    if let Ok(from) = read_journal(dir, from_seq) {
        assert!(from.seqs.first().is_none_or(|first| *first >= from_seq), "{from:?}");
    }
    if let Ok(strict) = verify_journal(dir) {
        // Everything the audit accepts, a plain reader reads the same way.
        let lenient = lenient.as_ref().expect("verified, so readable");
        assert_eq!(&strict, lenient);
        assert_eq!(strict.seqs.first().copied().unwrap_or(1), 1);
    }
    recover_and_append(dir, lenient.ok(), u32::from(mode / 3 % 2));
}

/// What a reader found: the sequences it returned, where it stopped, a torn tail.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    seqs: Vec<u64>,
    crcs: Vec<u32>,
    formats: Vec<u32>,
    next_seq: Option<u64>,
    torn_tail: Option<TornTail>,
}

fn read_journal(dir: &Path, from_seq: u64) -> Result<Read, JournalError> {
    drain(JournalReader::open(dir, from_seq)?)
}

fn verify_journal(dir: &Path) -> Result<Read, JournalError> {
    drain(JournalReader::open_strict(dir)?)
}

/// Reads to the end; sequences come out consecutive.
fn drain(mut reader: JournalReader) -> Result<Read, JournalError> {
    let (mut seqs, mut crcs, mut formats) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(record) = reader.next()? {
        if let Some(last) = seqs.last() {
            assert_eq!(record.meta.seq, last + 1, "records come out in sequence");
        }
        assert!(!record.payload.is_empty() && record.payload.len() <= record::PAYLOAD_LEN_MAX);
        seqs.push(record.meta.seq);
        crcs.push(record.crc);
        formats.push(record.payload_format.expect("a reader knows the record's segment"));
    }
    let (next_seq, torn_tail) = (reader.next_seq(), reader.torn_tail().cloned());
    Ok(Read { seqs, crcs, formats, next_seq, torn_tail })
}

/// Opens the journal for writing (recovery) with `payload_format`. If that works, one
/// record is appended and the journal must then read cleanly to it, in that format; if
/// the whole journal was readable before, it must read back as before (records and
/// their formats) plus the new record.
fn recover_and_append(dir: &Path, before: Option<Read>, payload_format: u32) {
    // Built from `new` so that fields added later keep their defaults.
    let mut config = JournalConfig::new(dir);
    config.segment_size = SEGMENT_SIZE_MIN;
    config.durability = Durability::Process;
    config.payload_format = payload_format;
    let Ok((mut journal, recovery)) = Journal::open(config) else { return };
    // The writer recovers to where a reader stops (unless it removed an unborn last
    // segment, which a reader refuses).
    if let Some(before) = before.as_ref().filter(|_| recovery.removed_segment.is_none()) {
        assert_eq!(before.next_seq, Some(recovery.last_seq + 1), "{before:?} {recovery:?}");
    }
    let seq = journal.next_seq();
    let meta = RecordMeta { seq, time_ns: 1, user: 2, session: 3, peer: 4 };
    journal.append(&meta, b"appended after recovery").expect("a recovered journal appends");
    drop(journal);
    let segments = list_segments(dir).expect("the writer left a listable directory");
    let (last_first, _) = *segments.last().expect("the writer left a segment");
    let after = read_journal(dir, last_first).expect("the recovered segment reads");
    assert_eq!(after.seqs.last(), Some(&seq), "{after:?}");
    assert_eq!(after.formats.last(), Some(&payload_format), "{after:?}");
    assert_eq!(after.torn_tail, None);
    if let Some(before) = before {
        let after = read_journal(dir, 1).expect("a readable journal stays readable");
        assert_eq!(after.seqs[..after.seqs.len() - 1], before.seqs[..]);
        assert_eq!(after.crcs[..after.crcs.len() - 1], before.crcs[..]);
        assert_eq!(after.formats[..after.formats.len() - 1], before.formats[..]);
    }
}

/// Writes the journal files described by `input` into `dir`; returns the sequence to
/// read from. `mode % 3`:
/// - 0: `input` is the whole first segment file (header included);
/// - 1: a valid header for a segment that starts the journal, then `input` (and zeros
///   to the minimum segment size);
/// - 2: valid records in one or two segments, built from a few bytes of `input`, then
///   damaged by the edits in the rest of it (see [`JournalPlan`]).
fn write_journal(dir: &Path, mode: u8, input: &[u8]) -> u64 {
    let path = segment_path(dir, 1);
    match mode % 3 {
        0 => write_file(&path, input),
        1 => write_file(&path, &segment_file(1, 0, input.to_vec())),
        _ => return JournalPlan::parse(input).write(dir),
    }
    1
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("the scratch directory is writable");
}

/// A segment file: its header, then `body`, then zeros up to the smallest size the
/// writer makes (a smaller segment is refused as damaged).
fn segment_file(first_seq: u64, chain_crc: u32, mut body: Vec<u8>) -> Vec<u8> {
    let size = (SEGMENT_HEADER_LEN + body.len()).max(SEGMENT_SIZE_MIN as usize);
    body.resize(size - SEGMENT_HEADER_LEN, 0);
    [segment_header(first_seq, chain_crc, size as u64), body].concat()
}

/// The 64-byte segment header (`journal/src/segment.rs`, `docs/JOURNAL.md`): magic,
/// version, CRC32C of bytes 0..12 and 16..64, first sequence, size, chain value.
fn segment_header(first_seq: u64, chain_crc: u32, size: u64) -> Vec<u8> {
    let mut out = vec![0u8; SEGMENT_HEADER_LEN];
    out[0..8].copy_from_slice(b"FCJRNL\x00\x01");
    out[8..12].copy_from_slice(&1u32.to_le_bytes());
    out[16..24].copy_from_slice(&first_seq.to_le_bytes());
    out[24..32].copy_from_slice(&size.to_le_bytes());
    out[32..36].copy_from_slice(&chain_crc.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[0..12]), &out[16..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A structured journal: records per segment, free space, a start sequence for the
/// reader, then byte edits. Layout of the input: `[first][second][slack][from]`, one
/// payload-length byte per record, then 4-byte edits `[what][offset lo][offset hi][value]`.
struct JournalPlan<'a> {
    /// Records in the first and the second segment (0 in the second: one segment).
    records: [usize; 2],
    /// Zero bytes after the last record of each segment (beyond the minimum size).
    slack: usize,
    /// Where the reader starts.
    from_seq: u64,
    payload_lens: &'a [u8],
    edits: &'a [u8],
}

impl JournalPlan<'_> {
    fn parse(input: &[u8]) -> JournalPlan<'_> {
        let byte = |i: usize| input.get(i).copied().unwrap_or(0);
        let records = [usize::from(byte(0) % 16), usize::from(byte(1) % 16)];
        let rest = input.get(4..).unwrap_or(&[]);
        let (payload_lens, edits) = rest.split_at(rest.len().min(records[0] + records[1]));
        JournalPlan {
            records,
            slack: usize::from(byte(2)) * 8,
            from_seq: u64::from(byte(3) % 40),
            payload_lens,
            edits,
        }
    }

    /// Writes the segments and applies the edits; returns the reader's start.
    fn write(&self, dir: &Path) -> u64 {
        let (mut seq, mut chain) = (1u64, 0u32);
        let mut files = Vec::new();
        let mut lens = self.payload_lens.iter().copied().chain(std::iter::repeat(24));
        for (index, &count) in self.records.iter().enumerate() {
            if index > 0 && count == 0 {
                break;
            }
            let (first, mut body) = (seq, Vec::new());
            for _ in 0..count {
                let payload_len = 1 + usize::from(lens.next().unwrap_or(0) % 96);
                chain = append_record(&mut body, seq, chain, payload_len);
                seq += 1;
            }
            let minimum = SEGMENT_SIZE_MIN as usize - SEGMENT_HEADER_LEN;
            body.resize(body.len().max(minimum) + self.slack, 0);
            let start_chain = if index == 0 { 0 } else { files_chain(&files) };
            files.push((segment_path(dir, first), segment_file(first, start_chain, body), chain));
        }
        for edit in self.edits.chunks_exact(4) {
            apply_edit(&mut files, edit);
        }
        for (path, bytes, _) in &files {
            write_file(path, bytes);
        }
        self.from_seq
    }
}

/// The chain value at the end of the last segment written so far.
fn files_chain(files: &[(PathBuf, Vec<u8>, u32)]) -> u32 {
    files.last().map_or(0, |(_, _, chain)| *chain)
}

/// Appends one valid record (layout in `journal/src/record.rs`); returns its checksum.
fn append_record(out: &mut Vec<u8>, seq: u64, chain: u32, payload_len: usize) -> u32 {
    let meta = record::encode_meta(&RecordMeta {
        seq,
        time_ns: seq * 1_000,
        user: 1,
        session: 1,
        peer: 0,
    });
    let payload: Vec<u8> = (0..payload_len).map(|i| (seq as u8).wrapping_add(i as u8)).collect();
    let crc = record::record_crc(chain, &meta, &payload);
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&payload);
    out.resize(start + record::record_len(payload_len), 0);
    crc
}

/// One edit: `what` bit 2 picks the segment; bits 0-1: xor, set, zero 8 bytes, or cut
/// the file there.
fn apply_edit(files: &mut [(PathBuf, Vec<u8>, u32)], edit: &[u8]) {
    let [what, low, high, value] = [edit[0], edit[1], edit[2], edit[3]];
    let index = usize::from(what >> 2 & 1).min(files.len() - 1);
    let bytes = &mut files[index].1;
    if bytes.is_empty() {
        return;
    }
    let at = usize::from(u16::from_le_bytes([low, high])) % bytes.len();
    match what & 3 {
        0 => bytes[at] ^= value.max(1),
        1 => bytes[at] = value,
        2 => {
            let end = (at + 8).min(bytes.len());
            bytes[at..end].fill(0);
        }
        _ => bytes.truncate(at),
    }
}

// ---- snapshots -----------------------------------------------------------------------

/// Target `snapshot`: the first byte picks the path; `mode % 3`:
/// - 0: the rest is an engine snapshot, restored with `Engine::from_snapshot`;
/// - 1: the rest is a whole snapshot file, loaded by the journal's `SnapshotStore`;
/// - 2: the rest is the payload of a valid snapshot file, written, loaded and restored.
pub fn snapshot(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            restore(rest);
        }
        1 => load_snapshot_file(rest),
        _ => load_snapshot_payload(rest),
    }
}

/// Restores an engine from `bytes`. A snapshot that is accepted describes a state that
/// passes the invariants, is written back byte for byte, and takes the next command.
fn restore(bytes: &[u8]) -> Option<u64> {
    if too_large_to_fuzz(bytes) {
        return None;
    }
    let mut engine = Engine::from_snapshot(bytes).ok()?;
    engine.check_invariants().expect("a restored engine passes the invariants");
    assert_eq!(engine.snapshot(), bytes, "an accepted snapshot is the canonical one");
    let hash = engine.state_hash();
    let tick = Command {
        seq: engine.last_seq() + 1,
        time_ns: 0,
        user: SYSTEM_USER,
        body: CommandBody::Tick,
    };
    let mut events = Vec::new();
    engine.apply(&tick, &mut events);
    engine.check_invariants().expect("a restored engine stays valid");
    Some(hash)
}

/// The loader's ceilings let a snapshot ask for tables of up to about 2 GiB (by design:
/// a real server may be configured that large), far past a fuzzer's memory limit and
/// time budget. Snapshots whose limits lie between this harness's cap and those
/// ceilings are skipped; limits above the ceilings still reach the loader, which must
/// refuse them before allocating.
fn too_large_to_fuzz(bytes: &[u8]) -> bool {
    const CAP: u32 = 1 << 16;
    // (offset of the limit in the snapshot head, the loader's ceiling for it)
    const ALLOCATING: [(usize, u32); 5] =
        [(8, 1 << 20), (12, 1 << 22), (16, 1 << 24), (20, 1 << 20), (32, 1 << 24)];
    let u32_at = |at: usize| {
        bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    ALLOCATING.iter().any(|&(at, ceiling)| u32_at(at).is_some_and(|v| v > CAP && v <= ceiling))
}

/// A file of arbitrary bytes in a snapshot directory: loading it is an error or a
/// snapshot whose payload then goes through the engine's loader.
fn load_snapshot_file(bytes: &[u8]) {
    let scratch = Scratch::new();
    let store = SnapshotStore::open(scratch.path(), 2).expect("the scratch directory opens");
    let path = store.path(1);
    write_file(&path, bytes);
    let loaded = SnapshotStore::load(&path);
    let accept = |s: &fincore_journal::Snapshot| {
        restore(&s.payload).map(|_| ()).ok_or_else(|| "refused by the engine".to_string())
    };
    let (newest, skipped) = store.load_newest(accept).expect("the scratch directory lists");
    // The one file is either taken or skipped with a reason.
    assert_eq!(usize::from(newest.is_some()) + skipped.len(), 1);
    if let Ok(loaded) = loaded {
        restore(&loaded.payload);
    }
}

/// Wraps `payload` in a valid snapshot file: it loads back unchanged, and the engine's
/// loader decides on the payload.
fn load_snapshot_payload(payload: &[u8]) {
    let scratch = Scratch::new();
    let store = SnapshotStore::open(scratch.path(), 2).expect("the scratch directory opens");
    let path = store.write(9, 0x5EED, 0xC4C, payload).expect("the scratch directory is writable");
    let loaded = SnapshotStore::load(&path).expect("a snapshot file just written loads");
    let read = (loaded.seq, loaded.state_hash, loaded.journal_crc, &loaded.payload[..]);
    assert_eq!(read, (9, 0x5EED, Some(0xC4C), payload));
    restore(&loaded.payload);
}

// ---- engine --------------------------------------------------------------------------

/// Small limits: `Engine::new` and a clone per command stay cheap, and the fuzzer
/// reaches every table's "full" reject within a few dozen commands.
const FUZZ_LIMITS: EngineLimits = EngineLimits {
    users_max: 16,
    accounts_max: 16,
    orders_max: 96,
    levels_per_side_max: 24,
    open_orders_per_account_max: 40,
    payments_max: 64,
    payments_expected: 16,
    orders_expected: 32,
};

/// A user that does not exist: the baseline reject of [`Lockstep::check_rejected`].
const NOBODY: UserId = UserId(u32::MAX);

/// The standard payments universe (two instruments, four funded traders, USD payment
/// limits) on [`FUZZ_LIMITS`], built once.
fn universe() -> &'static Engine {
    static UNIVERSE: OnceLock<Engine> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        let mut engine = Engine::new(FUZZ_LIMITS);
        let mut events = Vec::new();
        for command in universe_workload(0, 0).setup {
            events.clear();
            engine.apply(&command, &mut events);
            assert!(!events.iter().any(|e| matches!(e, Event::Rejected(_))), "{events:?}");
        }
        engine
    })
}

fn universe_workload(commands: usize, seed: u64) -> testkit::Workload {
    testkit::payments_workload(PaymentsMix {
        traders: 4,
        instruments: 2,
        commands,
        trading_percent: 40,
        transfer_percent: 50,
        seed,
    })
}

/// Target `engine`: the input is a sequence of chunks `[tag][len][len bytes]`. An even
/// tag makes the bytes a `Command` (engine codec; its sequence number is replaced by the
/// next one), applied to the universe; an odd tag makes them a `Query`, asked as user
/// `tag >> 1`. After every command every invariant holds, and a rejected command changed
/// nothing but the sequence and the clock. At the end the state goes through a snapshot
/// and back.
pub fn engine(data: &[u8]) {
    let mut run = Lockstep::new();
    let mut rest = data;
    while let [tag, len, tail @ ..] = rest {
        let (bytes, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        if tag % 2 == 1 {
            if let Ok(query) = Query::decode(bytes) {
                run.events.clear();
                run.engine.query(UserId(u32::from(tag >> 1)), &query, &mut run.events);
            }
        } else if let Ok(command) = Command::decode(bytes) {
            run.apply(command);
        }
    }
    let bytes = run.engine.snapshot();
    let restored = Engine::from_snapshot(&bytes).expect("every reachable state restores");
    assert_eq!(restored.state_hash(), run.engine.state_hash());
}

/// The engine under test and a shadow one command behind it. The shadow is the
/// before-image a rejected command is compared with; after an accepted command it
/// applies the same command and must emit the same events (determinism). Keeping it in
/// step costs one more `apply` per command, far less than a clone. `feed` is every
/// balance as the `Balance` events left it (from the universe's state on): after every
/// command it must equal the engine's balances, so none changes unpublished.
struct Lockstep {
    engine: Engine,
    shadow: Engine,
    events: Vec<Event>,
    shadow_events: Vec<Event>,
    feed: BTreeMap<(AccountId, AssetId), Balance>,
}

impl Lockstep {
    fn new() -> Lockstep {
        let universe = universe();
        let (events, shadow_events) = (Vec::new(), Vec::new());
        let feed = balances(universe).collect();
        let (engine, shadow) = (universe.clone(), universe.clone());
        Lockstep { engine, shadow, events, shadow_events, feed }
    }

    /// Brings the feed up to date with this command's `Balance` events and compares it
    /// with every balance of every account.
    fn check_feed(&mut self, command: &Command) {
        for event in &self.events {
            if let Event::Balance(b) = event {
                let heard = Balance { available: b.available, held: b.held, pending: b.pending };
                self.feed.insert((b.account, b.asset), heard);
            }
        }
        for (key, balance) in balances(&self.engine) {
            let heard = self.feed.get(&key).copied().unwrap_or_default();
            assert_eq!(heard, balance, "{key:?} after {command:?} (events {:?})", self.events);
        }
    }

    fn apply(&mut self, mut command: Command) {
        command.seq = self.engine.last_seq() + 1;
        self.events.clear();
        self.engine.apply(&command, &mut self.events);
        if let Err(broken) = self.engine.check_invariants() {
            panic!("invariant broken after {command:?} (events {:?}): {broken}", self.events);
        }
        self.check_feed(&command);
        let rejects = self.events.iter().filter(|e| matches!(e, Event::Rejected(_))).count();
        self.shadow_events.clear();
        if rejects == 0 {
            self.shadow.apply(&command, &mut self.shadow_events);
            assert_eq!(self.shadow_events, self.events, "the same command, other events");
            return;
        }
        assert_eq!(rejects, 1, "{:?}", self.events);
        self.check_rejected(&command);
    }

    /// A rejected command changes nothing but the sequence number and the clock (and
    /// what the clock expired). The shadow, still before it, is brought to the same
    /// sequence and time with the plainest reject there is (an unknown user); the
    /// expiries and the state hash must then agree.
    fn check_rejected(&mut self, command: &Command) {
        let events = &self.events;
        assert!(
            matches!(events.last(), Some(Event::Rejected(_))),
            "a reject comes last: {events:?}"
        );
        let body = CommandBody::MassCancel { account: AccountId(0), instrument: None };
        let plain = Command { user: NOBODY, body, ..*command };
        self.shadow.apply(&plain, &mut self.shadow_events);
        let Some((Event::Rejected(plain_reject), expiries)) = self.shadow_events.split_last()
        else {
            panic!("the baseline is a reject: {:?}", self.shadow_events);
        };
        assert_eq!(plain_reject.reason, RejectReason::UnknownUser);
        assert_eq!(expiries, &events[..events.len() - 1], "the same expiries before {command:?}");
        let moved = self.shadow.state_hash() != self.engine.state_hash();
        assert!(!moved, "{command:?} was rejected but changed the state");
    }
}

/// Every balance of every account, by account and asset.
fn balances(engine: &Engine) -> impl Iterator<Item = ((AccountId, AssetId), Balance)> + '_ {
    engine.accounts().flat_map(|(id, account)| {
        (0..ASSETS_MAX as u16)
            .map(move |asset| ((id, AssetId(asset)), account.balance(AssetId(asset))))
    })
}

// ---- seeds ---------------------------------------------------------------------------

/// A few valid inputs for `target`, to start the fuzzer past the decoders (written to
/// `fuzz/corpus/<target>/seed-*` by the replay test's `write_seeds`, and replayed by it
/// every run). Empty for an unknown target.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "frame" => frame_seeds(),
        "client_msg" => client_seeds().into_iter().map(|m| selected(&CLIENT_TYPES, m)).collect(),
        "server_msg" => server_seeds().into_iter().map(|m| selected(&SERVER_TYPES, m)).collect(),
        "codec" => codec_seeds(),
        "journal" => journal_seeds(),
        "snapshot" => snapshot_seeds(),
        "engine" => engine_seeds(),
        _ => Vec::new(),
    }
}

/// A client stream and a server stream, each of one frame of every message type.
fn frame_seeds() -> Vec<Vec<u8>> {
    let (mut client, mut server) = (Vec::new(), Vec::new());
    for (request_id, message) in (1..).zip(sample_client_messages()) {
        message.encode_into(request_id, &mut client);
    }
    for (seq, message) in (1..).zip(sample_server_messages()) {
        message.encode_into(seq, &mut server);
    }
    vec![client, server]
}

/// `[selector][body]` for the message-type targets, from an encoded frame.
fn selected(types: &[u16], frame: Vec<u8>) -> Vec<u8> {
    let header = Header::parse(&frame).expect("an encoded frame");
    let selector = types.iter().position(|t| *t == header.msg_type).expect("a known type");
    let mut out = vec![selector as u8];
    out.extend_from_slice(&frame[HEADER_LEN..]);
    out
}

fn client_seeds() -> Vec<Vec<u8>> {
    let messages = sample_client_messages();
    messages
        .into_iter()
        .map(|m| {
            let mut out = Vec::new();
            m.encode_into(1, &mut out);
            out
        })
        .collect()
}

fn server_seeds() -> Vec<Vec<u8>> {
    sample_server_messages()
        .into_iter()
        .map(|m| {
            let mut out = Vec::new();
            m.encode_into(1, &mut out);
            out
        })
        .collect()
}

fn sample_order() -> NewOrder {
    NewOrder {
        account: AccountId(1),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(11),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        price: Price(9_990),
        qty: Qty(5),
        stp_mode: StpMode::CancelNewest,
        stp_scope: StpScope::Account,
        post_only: false,
    }
}

fn sample_client_messages() -> Vec<ClientMsg> {
    use fincore_gateway::wire::*;
    let (account, asset) = (AccountId(1), AssetId(0));
    let payment = PaymentRef::Client(ClientPaymentId(5));
    let external =
        ExternalPayment { account, asset, amount: 100, client_payment_id: ClientPaymentId(3) };
    vec![
        ClientMsg::Login(Login::new("alice", "alice-secret", 1_000, true)),
        ClientMsg::Heartbeat,
        ClientMsg::Logout,
        ClientMsg::NewOrder(sample_order()),
        ClientMsg::Cancel(Cancel { account, order: OrderRef::Client(ClientOrderId(11)) }),
        ClientMsg::Amend(Amend {
            account,
            order: OrderRef::Id(OrderId(1)),
            price: Price(9_980),
            qty: Qty(3),
        }),
        ClientMsg::MassCancel(MassCancel { account, instrument: Some(InstrumentId(0)) }),
        ClientMsg::CreateAccount(CreateAccount { account: AccountId(9), owner: UserId(2) }),
        ClientMsg::Deposit(external),
        ClientMsg::Withdraw(external),
        ClientMsg::SetAccountStatus(SetAccountStatus { account, status: AccountStatus::Frozen }),
        ClientMsg::SetInstrumentStatus(SetInstrumentStatus {
            instrument: InstrumentId(0),
            status: InstrumentStatus::Halted,
            cancel_resting: true,
        }),
        ClientMsg::TakeSnapshot,
        ClientMsg::Query(Query::Depth { instrument: InstrumentId(0), levels: 5 }),
        ClientMsg::Subscribe(InstrumentId(0)),
        ClientMsg::Unsubscribe(InstrumentId(1)),
        ClientMsg::Transfer(Transfer {
            debit: account,
            credit: AccountId(2),
            asset,
            amount: 7,
            client_payment_id: ClientPaymentId(4),
        }),
        ClientMsg::Authorize(Authorize {
            debit: account,
            credit: AccountId(2),
            asset,
            amount: 9,
            client_payment_id: ClientPaymentId(5),
            timeout_s: 60,
        }),
        ClientMsg::Capture(Capture { account, payment, amount: 0 }),
        ClientMsg::Void(Void { account, payment: PaymentRef::Id(PaymentId(2)) }),
        ClientMsg::SetPaymentLimits(SetPaymentLimits {
            asset,
            transfer_max: Some(1_000),
            velocity_24h: None,
        }),
        ClientMsg::SetAccountLimits(SetAccountLimits {
            account,
            asset,
            credit_limit: 50,
            velocity_24h: Some(500),
        }),
        ClientMsg::SetAccountBlocked(SetAccountBlocked { account, blocked: true }),
    ]
}

fn sample_events() -> Vec<Event> {
    let rejected = Rejected {
        kind: CommandKind::NewOrder,
        account: AccountId(1),
        client_id: 11,
        reason: RejectReason::UnknownUser,
    };
    let mut engine = universe().clone();
    let mut events = vec![Event::Rejected(rejected), Event::Ticked { time_ns: 5 }];
    let mut commands = universe_workload(24, 1).commands;
    commands.truncate(24);
    for mut command in commands {
        command.seq = engine.last_seq() + 1;
        engine.apply(&command, &mut events);
    }
    events
}

fn sample_server_messages() -> Vec<ServerMsg> {
    use fincore_gateway::wire::*;
    let instrument = InstrumentId(0);
    let mut messages = vec![
        ServerMsg::LoginAccepted(LoginAccepted {
            session_id: 1,
            user: UserId(2),
            admin: false,
            heartbeat_ms: 1_000,
            next_seq: 2,
        }),
        ServerMsg::LoginRejected(SessionReason::LoginFailed.code()),
        ServerMsg::Heartbeat,
        ServerMsg::Logout(SessionReason::ClientLogout.code()),
        ServerMsg::SessionReject(SessionReject {
            reason: 900,
            ref_type: 10,
            ref_request_id: 3,
            ref_client_id: 11,
        }),
        ServerMsg::SnapshotTaken(SnapshotTaken { seq: 40, state_hash: 0xABCD }),
        ServerMsg::MdSnapshotLevel(MdSnapshotLevel {
            instrument,
            side: Side::Sell,
            price: Price(10_010),
            qty: Qty(4),
            orders: 2,
        }),
        ServerMsg::MdSnapshotEnd(MdSnapshotEnd { instrument, md_seq: 9, levels: 1 }),
        ServerMsg::MdTrade(MdTrade {
            instrument,
            md_seq: 10,
            trade_id: TradeId(1),
            price: Price(10_000),
            qty: Qty(1),
            taker_side: Side::Buy,
        }),
        ServerMsg::MdLevel(MdLevel {
            instrument,
            md_seq: 11,
            side: Side::Buy,
            price: Price(9_990),
            qty: Qty(0),
            orders: 0,
        }),
        ServerMsg::MdUnsubscribed(instrument),
    ];
    for (journal_seq, event) in (1..).zip(sample_events().into_iter().take(12)) {
        messages.push(ServerMsg::ExecReport(ExecReport { journal_seq, request_id: 2, event }));
    }
    messages
}

/// Commands, events and queries of every kind the samples and workloads produce.
fn codec_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let tagged = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    for command in
        universe_workload(30, 2).setup.into_iter().chain(universe_workload(30, 2).commands)
    {
        out.push(tagged(0, command.encode()));
    }
    for event in sample_events() {
        out.push(tagged(1, event.encode()));
    }
    for query in sample_queries() {
        out.push(tagged(2, query.encode()));
    }
    out.sort();
    out.dedup();
    out
}

fn sample_queries() -> Vec<Query> {
    let account = AccountId(1);
    vec![
        Query::Balances { account },
        Query::Order { account, order: OrderRef::Client(ClientOrderId(11)) },
        Query::OpenOrders { account },
        Query::Depth { instrument: InstrumentId(0), levels: 3 },
        Query::Reference,
        Query::Payment { account, payment: PaymentRef::Id(PaymentId(1)) },
        Query::Payments { account, limit: 10 },
    ]
}

/// A raw segment, records behind a bare header, and structured journals (one and two
/// segments, clean, with a torn tail, with a flipped byte).
fn journal_seeds() -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut chain = 0;
    for seq in 1..=3 {
        chain = append_record(&mut records, seq, chain, 10 * seq as usize);
    }
    // A whole segment is too large for a seed: a header, records, and a file shorter
    // than the header says.
    let raw = [segment_header(1, 0, SEGMENT_SIZE_MIN), records.clone()].concat();
    vec![
        [vec![0], raw].concat(),
        [vec![1], records].concat(),
        vec![2, 5, 0, 4, 1, 8, 20, 3, 60, 7],
        vec![2, 4, 3, 2, 1, 1, 40, 9, 15, 2, 30, 2],
        // The last record's length field cut: a torn tail.
        vec![2, 3, 0, 2, 0, 8, 8, 8, 3, 0x60, 0, 0],
        // A flipped byte in the middle of the first segment.
        vec![2, 6, 2, 2, 0, 8, 8, 8, 8, 8, 8, 8, 8, 0, 0x90, 0, 0x40],
    ]
}

/// A small engine state after a mixed workload, as a raw snapshot, inside a whole file,
/// and as a file payload.
fn snapshot_seeds() -> Vec<Vec<u8>> {
    let mut engine = universe().clone();
    let mut events = Vec::new();
    for mut command in universe_workload(80, 3).commands {
        command.seq = engine.last_seq() + 1;
        engine.apply(&command, &mut events);
    }
    let bytes = engine.snapshot();
    let scratch = Scratch::new();
    let store = SnapshotStore::open(scratch.path(), 1).expect("the scratch directory opens");
    let path = store.write(engine.last_seq(), engine.state_hash(), 0, &bytes).expect("writable");
    let file = std::fs::read(path).expect("just written");
    let empty = Engine::new(FUZZ_LIMITS).snapshot();
    vec![
        [vec![0], bytes.clone()].concat(),
        [vec![1], file].concat(),
        [vec![2], bytes].concat(),
        [vec![0], empty].concat(),
    ]
}

/// Workload streams as engine chunks: the trading mix, the payments mix, and every
/// query kind between them.
fn engine_seeds() -> Vec<Vec<u8>> {
    let chunks = |commands: Vec<Command>| {
        let mut out = Vec::new();
        for command in commands {
            let bytes = command.encode();
            out.extend_from_slice(&[0, bytes.len() as u8]);
            out.extend_from_slice(&bytes);
        }
        out
    };
    let trading =
        testkit::trading_workload(TradingMix { instruments: 2, traders: 4, commands: 40, seed: 4 });
    let mut mixed = chunks(universe_workload(40, 5).commands);
    for query in sample_queries() {
        let bytes = query.encode();
        mixed.extend_from_slice(&[3, bytes.len() as u8]);
        mixed.extend_from_slice(&bytes);
    }
    vec![chunks(trading.commands), mixed, chunks(admin_commands()), chunks(listing_commands())]
}

/// Admin and payment commands the workloads never send: expiry by the clock, limits,
/// statuses, new users and accounts.
fn admin_commands() -> Vec<Command> {
    let (trader, account) = (UserId(1), AccountId(1));
    let hour_ns = 3_600 * 1_000_000_000;
    let bodies = [
        (SYSTEM_USER, CommandBody::CreateUser { user: UserId(7), role: Role::Operator }),
        (SYSTEM_USER, CommandBody::CreateAccount { account: AccountId(9), owner: UserId(7) }),
        (
            UserId(7),
            CommandBody::Deposit {
                account: AccountId(9),
                asset: testkit::USD,
                amount: 500,
                client_payment_id: ClientPaymentId(1),
            },
        ),
        (
            trader,
            CommandBody::Authorize(Authorize {
                debit: account,
                credit: AccountId(9),
                asset: testkit::USD,
                amount: 50,
                client_payment_id: ClientPaymentId(2),
                timeout_s: 1,
            }),
        ),
        (trader, CommandBody::NewOrder(sample_order())),
        (
            trader,
            CommandBody::Amend(Amend {
                account,
                order: OrderRef::Client(ClientOrderId(11)),
                price: Price(9_995),
                qty: Qty(2),
            }),
        ),
        (
            SYSTEM_USER,
            CommandBody::SetAccountLimits {
                account,
                asset: testkit::USD,
                credit_limit: 100,
                velocity_24h: Some(1_000),
            },
        ),
        (SYSTEM_USER, CommandBody::SetAccountBlocked { account: AccountId(2), blocked: true }),
        (
            SYSTEM_USER,
            CommandBody::SetInstrumentStatus {
                instrument: InstrumentId(1),
                status: InstrumentStatus::Halted,
                cancel_resting: true,
            },
        ),
        (SYSTEM_USER, CommandBody::Tick),
        (
            trader,
            CommandBody::Withdraw {
                account,
                asset: testkit::USD,
                amount: 10,
                client_payment_id: ClientPaymentId(3),
            },
        ),
        (
            SYSTEM_USER,
            CommandBody::SetAccountStatus { account: AccountId(3), status: AccountStatus::Closed },
        ),
        (trader, CommandBody::MassCancel { account, instrument: None }),
    ];
    let start = universe().time_ns();
    (1..)
        .zip(bodies)
        .map(|(i, (user, body))| Command { seq: 0, time_ns: start + i * hour_ns / 4, user, body })
        .collect()
}

/// A new asset and instrument, a trade on it, and payments in it captured and voided.
fn listing_commands() -> Vec<Command> {
    let eur = AssetId(3);
    let spec = InstrumentSpec {
        instrument: InstrumentId(2),
        symbol: Symbol::new("EUR-USD").expect("short"),
        base: eur,
        lot_size: Dec { mantissa: 1, scale: 2 },
        ..testkit::instrument_spec(2)
    };
    let order = |account: u32, side, price| {
        let order =
            NewOrder { account: AccountId(account), side, price: Price(price), ..sample_order() };
        (UserId(account), CommandBody::NewOrder(NewOrder { instrument: spec.instrument, ..order }))
    };
    let authorize = |id, amount| Authorize {
        debit: AccountId(1),
        credit: AccountId(2),
        asset: eur,
        amount,
        client_payment_id: ClientPaymentId(id),
        timeout_s: 600,
    };
    let deposit = |account, id| CommandBody::Deposit {
        account: AccountId(account),
        asset: eur,
        amount: 1_000_000,
        client_payment_id: ClientPaymentId(id),
    };
    let bodies = [
        (
            SYSTEM_USER,
            CommandBody::CreateAsset {
                asset: eur,
                symbol: Symbol::new("EUR").expect("short"),
                scale: 2,
            },
        ),
        (SYSTEM_USER, CommandBody::CreateInstrument(spec)),
        (SYSTEM_USER, deposit(1, 1)),
        (SYSTEM_USER, deposit(2, 2)),
        order(2, Side::Sell, 10_010),
        order(1, Side::Buy, 10_020),
        (
            SYSTEM_USER,
            CommandBody::SetPaymentLimits {
                asset: eur,
                transfer_max: Some(5_000),
                velocity_24h: Some(20_000),
            },
        ),
        (UserId(1), CommandBody::Authorize(authorize(3, 4_000))),
        (UserId(1), CommandBody::Authorize(authorize(4, 900))),
        (
            UserId(1),
            CommandBody::Capture {
                account: AccountId(1),
                payment: PaymentRef::Client(ClientPaymentId(3)),
                amount: 1_500,
            },
        ),
        (
            UserId(1),
            CommandBody::Void {
                account: AccountId(1),
                payment: PaymentRef::Client(ClientPaymentId(4)),
            },
        ),
    ];
    let start = universe().time_ns();
    (1..)
        .zip(bodies)
        .map(|(i, (user, body))| Command { seq: 0, time_ns: start + i * 1_000, user, body })
        .collect()
}

// ---- scratch directories ---------------------------------------------------------------

/// A fresh directory, removed on drop: in `FINCORE_FUZZ_TMP` if set, else in `/dev/shm`
/// (memory: a fuzzer writes files at every execution), else in the system's temp dir.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        let base = std::env::var_os("FINCORE_FUZZ_TMP").map(PathBuf::from).unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
        });
        let dir = tempfile::Builder::new().prefix("fincore-fuzz-").tempdir_in(base);
        Scratch(dir.expect("a scratch directory can be created"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}
