//! A writable shared memory map of a segment file, with bounds-checked writes and the
//! release-store that publishes a record: all of the workspace's memory `unsafe` (the
//! two others are a system call, `prepare::run_when_idle`, and the call of a function
//! compiled for SSE 4.2 after checking the CPU has it, `checksum::crc32c_append`).
//!
//! Soundness rests on one ownership rule, kept by `Journal`: exactly one writer (the
//! journal, on the engine thread) writes to a segment, and only beyond the last
//! published record; other threads only call `msync` on the map (the fsync flusher),
//! which reads nothing through Rust references, or unmap it once the `Arc` they were
//! handed is the last (the flusher, or the segment preparer in `process` mode). No
//! `&[u8]` into this map is ever handed out, so no Rust reference aliases memory that
//! is being written.
#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
use memmap2::Advice;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

/// A writable mapping of a whole segment file.
#[derive(Debug)]
pub struct SegmentMap {
    map: MmapRaw,
}

impl SegmentMap {
    /// Maps all of `file` (opened read-write) for writing, with its pages faulted in up
    /// front *for writing* (`MADV_POPULATE_WRITE`, Linux 5.14+): every page is read in
    /// (zeroed: its blocks are reserved but unwritten, `segment::reserve`) and mapped
    /// writable, so that appends take no page fault at all. Without it, appends on the
    /// engine thread took the whole fault, which halved append throughput when
    /// measured; with the read-only pre-fault of `MAP_POPULATE` (the fallback where the
    /// kernel lacks the advice) each page's first write still took a write fault, about
    /// 7 % of the engine thread in `fincore bench pipeline` (BENCHMARKS.md).
    ///
    /// Pre-faulting for writing marks the pages dirty: the kernel writes the unused
    /// part of a segment back as zeros, and a page written back before the journal
    /// reaches it takes one light write fault then. Where the advice fails (an old
    /// kernel; or a sparse file on a full file system without `fallocate`) the
    /// read-only pre-fault is used. The caller reserves the file's blocks first:
    /// without that, a full file system would make the advice fail part-way, after it
    /// had taken all the room there was.
    pub fn map(file: &File) -> io::Result<SegmentMap> {
        let map = MmapOptions::new().map_raw(file)?;
        #[cfg(target_os = "linux")]
        if map.advise(Advice::PopulateWrite).is_ok() {
            return Ok(SegmentMap { map });
        }
        drop(map);
        let map = MmapOptions::new().populate().map_raw(file)?;
        Ok(SegmentMap { map })
    }

    /// Maps all of `file` for writing without faulting anything in: each page is
    /// faulted in by its first write. For a roll-over on the appending thread, where
    /// faulting in a whole segment at once would stop appends for that long.
    pub fn map_lazily(file: &File) -> io::Result<SegmentMap> {
        let map = MmapOptions::new().map_raw(file)?;
        Ok(SegmentMap { map })
    }

    /// Mapped length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Copies `bytes` to `offset`. Panics if the range is outside the map (a bug: the
    /// journal checks room before writing).
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        let end = offset.checked_add(bytes.len()).expect("no overflow");
        assert!(end <= self.map.len(), "write past the end of a segment");
        // SAFETY: the range [offset, end) is inside the mapping (checked above); the
        // mapping lives as long as `self`; by the module's ownership rule no other
        // thread writes this range and no Rust reference points into it, so the copy
        // races with nothing. Source and destination cannot overlap: `bytes` is not
        // derived from this map.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                bytes.len(),
            );
        }
    }

    /// Fills `[offset, offset + len)` with zeros.
    pub fn zero(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len).expect("no overflow");
        assert!(end <= self.map.len(), "zeroing past the end of a segment");
        // SAFETY: in bounds (checked above); same exclusivity argument as `write`.
        unsafe { std::ptr::write_bytes(self.map.as_mut_ptr().add(offset), 0, len) }
    }

    /// Stores a record's length field with release ordering: every byte written before
    /// (the record's body and checksum) is visible to anyone who sees the length.
    pub fn publish_len(&self, offset: usize, len: u32) {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.map.len(), "aligned and in bounds");
        // SAFETY: the pointer is in bounds and 4-byte aligned (the map is page aligned
        // and `offset` is a multiple of 4, checked above); the memory is only accessed
        // atomically or by this thread while the field is being published.
        let field = unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u32>()) };
        field.store(len, Ordering::Release);
    }

    /// Writes `[offset, offset + len)` back to the file and waits for the device
    /// (msync MS_SYNC).
    pub fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }
}

/// A read-only mapping of a segment file, for readers and recovery scans.
#[derive(Debug)]
pub struct ReadMap {
    map: memmap2::Mmap,
}

impl ReadMap {
    /// Maps all of `file` read-only.
    pub fn map(file: &File) -> io::Result<ReadMap> {
        // SAFETY: memmap2 requires that the file is not truncated or modified while the
        // `&[u8]` of this map exists. Segment files are created with a fixed size and
        // never truncated by fincore. Within this process no writer appends while a
        // reader exists: `Runner::open` finishes its replay before the first append,
        // and the tools only read. A reader in *another* process (`fincore replay` or
        // `verify` against a running server) does look at bytes a live writer is still
        // appending: past the last complete record, and in the torn-write window it
        // inspects. Those bytes may change under it, which can make it report a torn
        // tail or damage that is not there (docs/JOURNAL.md section 7 says so); the
        // bytes it *accepts* are complete records, whose contents no longer change.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(ReadMap { map })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::SegmentMap;
    use std::fs::OpenOptions;

    /// Both ways of mapping write through to the file: what a lazily mapped segment
    /// holds after its pages were faulted in by writes is what the file reads back.
    #[test]
    fn writes_through_either_mapping_reach_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, lazy) in [("populated", false), ("lazy", true)] {
            let path = dir.path().join(name);
            let file =
                OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
            file.set_len(3 * 4096).unwrap();
            let map = if lazy { SegmentMap::map_lazily(&file) } else { SegmentMap::map(&file) };
            let map = map.expect("mapped");
            map.write(4090, b"across a page");
            map.publish_len(8192, 7);
            map.sync(0, map.len()).expect("synced");
            drop(map);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len(), 3 * 4096);
            assert_eq!(&bytes[4090..4103], b"across a page", "{name}");
            assert_eq!(&bytes[8192..8196], &7u32.to_le_bytes(), "{name}");
            assert!(bytes[..4090].iter().all(|&b| b == 0), "{name}: the rest stays zero");
        }
    }

    /// A populated map is faulted in for writing: right after mapping, all its pages
    /// are present and dirty (as `/proc/self/smaps` reports them), so appends take no
    /// page fault. Checked where the kernel has `MADV_POPULATE_WRITE` (5.14+); a
    /// kernel without it takes the read-only pre-fault instead, which this cannot see.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_populated_map_is_faulted_in_for_writing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("segment");
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
        let len = 4 << 20;
        file.set_len(len).unwrap();
        let map = SegmentMap::map(&file).expect("mapped");
        let probe = memmap2::MmapOptions::new().len(4096).map_anon().expect("anonymous map");
        if probe.advise(memmap2::Advice::PopulateWrite).is_err() {
            return; // no MADV_POPULATE_WRITE here
        }
        let start = format!("{:x}-", map.map.as_ptr() as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let entry: Vec<&str> = smaps
            .lines()
            .skip_while(|line| !line.starts_with(&start))
            .skip(1)
            // The entry's fields ("Size:   4096 kB"), up to the next mapping's header.
            .take_while(|line| line.split_whitespace().next().is_some_and(|w| w.ends_with(':')))
            .collect();
        let kib = |field: &str| -> u64 {
            let line = entry.iter().find(|line| line.starts_with(field)).expect("field");
            line.split_whitespace().nth(1).expect("value").parse().expect("number")
        };
        let dirty = kib("Shared_Dirty:") + kib("Private_Dirty:");
        assert_eq!(dirty * 1024, len, "every page of the map is dirty before any write");
    }
}
