//! The next segment, prepared in the background. Creating a 256 MiB file and faulting
//! in its pages means the kernel zeroes every page; done on the appending thread that
//! was half of the append time and a pause of tens of milliseconds at each roll-over
//! (measured with `fincore bench journal`). A helper thread does it ahead of time, into
//! a temporary file; the roll-over then writes the header and renames it.
//!
//! The helper starts on request, when the active segment is half full, not as soon as
//! the journal opens: on a 2-core machine the zeroing competes with the engine and
//! gateway threads, and a journal that never fills its segment should not pay for the
//! next one (the pipeline benchmark lost a quarter of its CPU to it).
//!
//! In `process` mode the same thread also unmaps sealed segments ([`Preparer::retire`]),
//! which would otherwise take the appending thread tens of milliseconds per roll-over.

use crate::map::SegmentMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

const PREFIX: &str = ".prepared-";
const SUFFIX: &str = ".tmp";

/// A zero-filled, mapped, pre-faulted file of the segment size, not yet a segment.
pub struct Prepared {
    /// The open file.
    pub file: File,
    /// Its writable mapping.
    pub map: SegmentMap,
    /// Its temporary path.
    pub path: PathBuf,
}

struct State {
    ready: Option<Prepared>,
    wanted: bool,
    /// A file is being prepared.
    busy: bool,
    /// Maps of sealed segments to unmap here rather than on the appending thread.
    retired: Vec<Arc<SegmentMap>>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// Keeps one prepared file ready.
pub struct Preparer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    /// Starts preparing files of `size` bytes in `dir`.
    pub fn start(dir: &Path, size: u64) -> std::io::Result<Preparer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: None,
                wanted: false,
                busy: false,
                retired: Vec::new(),
                stop: false,
            }),
            changed: Condvar::new(),
        });
        let (dir, worker) = (dir.to_path_buf(), Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("journal-prepare".into())
            .spawn(move || prepare_loop(&dir, size, &worker))?;
        Ok(Preparer { shared, thread: Some(thread) })
    }

    /// Asks for the next file to be prepared (if it is not already).
    pub fn want(&self) {
        self.shared.state.lock().expect("no panics").wanted = true;
        self.shared.changed.notify_all();
    }

    /// Unmaps a sealed segment's map on the helper thread (once no one else holds it).
    /// Unmapping 256 MiB of written pages takes the appending thread tens of
    /// milliseconds, most of it invalidating the page tables.
    pub fn retire(&self, map: Arc<SegmentMap>) {
        self.shared.state.lock().expect("no panics").retired.push(map);
        self.shared.changed.notify_all();
    }

    /// The prepared file, if one is ready (never waits). The next one waits for
    /// [`Preparer::want`].
    pub fn take(&self) -> Option<Prepared> {
        let mut state = self.shared.state.lock().expect("no panics");
        state.wanted = false;
        state.ready.take()
    }

    /// The file being prepared, once it is ready: waits for a preparation in flight
    /// (`None` if there is none, or it failed). For a roll-over whose own file could
    /// not be reserved: on a file system with room for one more segment, the
    /// preparer's reservation may be what took it.
    pub fn take_when_done(&self) -> Option<Prepared> {
        let state = self.shared.state.lock().expect("no panics");
        let mut state = self.shared.changed.wait_while(state, |s| s.busy).expect("no panics");
        state.wanted = false;
        state.ready.take()
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.shared.state.lock().expect("no panics").stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn prepare_loop(dir: &Path, size: u64, shared: &Shared) {
    run_when_idle();
    let mut count = 0u64;
    loop {
        let idle = |state: &mut State| {
            let work = state.wanted && state.ready.is_none();
            !work && state.retired.is_empty() && !state.stop
        };
        let locked = shared.state.lock().expect("no panics");
        let mut state = shared.changed.wait_while(locked, idle).expect("no panics");
        let retired = std::mem::take(&mut state.retired);
        if !retired.is_empty() {
            drop(state);
            drop(retired);
            continue;
        }
        if state.stop {
            if let Some(unused) = state.ready.take() {
                let _ = std::fs::remove_file(&unused.path);
            }
            return;
        }
        state.busy = true;
        drop(state);
        count += 1;
        let prepared = prepare(dir, size, count);
        let mut state = shared.state.lock().expect("no panics");
        state.busy = false;
        match prepared {
            Ok(prepared) => state.ready = Some(prepared),
            // The roll-over creates its file itself (and meets the same error, if it
            // was a full file system, as a failed append); the next request, for the
            // segment after, tries again, in case room was made meanwhile. Logged all
            // the same: if the roll-over then succeeds, the disk is nearly full, and
            // this is the operator's one notice before appends fail.
            Err(error) => {
                tracing::warn!(
                    dir = %dir.display(),
                    %error,
                    "could not prepare the next journal segment; the roll-over will create \
                     it itself"
                );
                state.wanted = false;
            }
        }
        drop(state);
        shared.changed.notify_all();
    }
}

/// A temporary file name in `dir` that [`remove_leftovers`] removes, told apart by
/// `tag` (and this process).
pub fn temp_path(dir: &Path, tag: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{}-{tag}{SUFFIX}", std::process::id()))
}

fn prepare(dir: &Path, size: u64, count: u64) -> std::io::Result<Prepared> {
    let path = temp_path(dir, &count.to_string());
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    let mapped = file
        .set_len(size)
        .and_then(|()| crate::segment::reserve_blocks(&file, size))
        .and_then(|()| SegmentMap::map(&file));
    let map = crate::segment::removed_on_error(&path, mapped)?;
    Ok(Prepared { file, map, path })
}

/// Removes prepared files a previous process left behind.
pub fn remove_leftovers(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(PREFIX) && name.ends_with(SUFFIX) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Puts the calling thread (the preparer) in the `SCHED_IDLE` class: it then runs only
/// on a CPU that nothing else wants, so the zeroing of the next segment (about 0.4 s of
/// CPU per 256 MiB here) waits for idle time instead of taking turns with the engine
/// and gateway threads. At normal priority it cost the pipeline benchmark a 300 ms
/// stretch of 10 - 40 ms latencies at each half-segment on 2 cores. At nice 19, the
/// next choice, it still got turns (the busy threads yield when they find no work, and
/// a yield lets it in): at 1 M commands/s the pipeline benchmark's p99 was 18 - 103 ms,
/// against 11 - 49 ms with `SCHED_IDLE` in the same minutes (BENCHMARKS.md). Where the
/// class cannot be set, nice 19 is the fallback (on Linux it applies to the calling
/// thread only), and failing that the thread runs at normal priority.
fn run_when_idle() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads the `sched_param` it is given, which
        // lives on this stack frame for the whole call; pid 0 is the calling thread.
        #[allow(unsafe_code)]
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if set == 0 {
            return;
        }
    }
    let _ = rustix::process::setpriority_process(None, 19);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy of this process's thread named `name` (field 41 of
    /// `/proc/self/task/TID/stat`): as soon as it is `wanted`, else the last one seen
    /// within two seconds (the thread sets its class when it starts running).
    fn policy_of_thread(name: &str, wanted: u32) -> Option<u32> {
        let mut seen = None;
        for _ in 0..200 {
            // Other tests' threads come and go meanwhile: one that vanished is skipped.
            for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
                let task = task.path();
                let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
                if comm.trim_end() != name {
                    continue;
                }
                let Ok(stat) = std::fs::read_to_string(task.join("stat")) else { continue };
                // The command name may hold spaces: count fields after its ')'; the
                // rest starts at field 3 (state), and the policy is field 41.
                let Some(close) = stat.rfind(')') else { continue };
                let policy = stat[close + 2..].split(' ').nth(41 - 3);
                seen = policy.and_then(|p| p.parse().ok()).or(seen);
                if seen == Some(wanted) {
                    return seen;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        seen
    }

    /// Waits until the preparer has answered the last request: a file is ready, or the
    /// attempt failed (which drops the request).
    fn answered(preparer: &Preparer) {
        let shared = &preparer.shared;
        let pending = |s: &mut State| s.busy || (s.wanted && s.ready.is_none());
        let state = shared.state.lock().expect("no panics");
        let timeout = std::time::Duration::from_secs(30);
        let (_state, waited) = shared.changed.wait_timeout_while(state, timeout, pending).unwrap();
        assert!(!waited.timed_out(), "the preparer did not answer in {timeout:?}");
    }

    /// A preparation that fails for want of room leaves no file and does not stop the
    /// preparer: the next request, once there is room, gets a file.
    #[test]
    #[cfg(feature = "testing")]
    fn a_failed_preparation_is_tried_again_at_the_next_request() {
        const SIZE: u64 = 1 << 20;
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(fs) = crate::testing::Tmpfs::mount(dir.path(), 2 * SIZE) else { return };
        let junk = fs.root().join("junk");
        std::fs::write(&junk, vec![1u8; SIZE as usize * 3 / 2]).expect("room for the junk");
        let preparer = Preparer::start(fs.root(), SIZE).expect("thread starts");
        preparer.want();
        answered(&preparer);
        assert!(preparer.take().is_none(), "a file was prepared without room for it");
        let left: Vec<_> = std::fs::read_dir(fs.root()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "a failed preparation left its file: {left:?}");

        std::fs::remove_file(&junk).expect("junk removed");
        preparer.want();
        answered(&preparer);
        let prepared = preparer.take().expect("prepared once there is room");
        assert_eq!(prepared.file.metadata().expect("stat").len(), SIZE);
        assert!(fs.used() >= SIZE, "the prepared file's blocks are reserved");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_preparer_runs_in_the_idle_class_and_prepares_a_segment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let preparer = Preparer::start(dir.path(), 1 << 20).expect("thread starts");
        let idle = libc::SCHED_IDLE as u32;
        assert_eq!(policy_of_thread("journal-prepare", idle), Some(idle));
        preparer.want();
        let mut prepared = None;
        for _ in 0..500 {
            prepared = preparer.take();
            if prepared.is_some() {
                break;
            }
            preparer.want();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let prepared = prepared.expect("a file is prepared, even at idle priority");
        assert_eq!(prepared.map.len(), 1 << 20);
        assert_eq!(prepared.file.metadata().expect("stat").len(), 1 << 20);
    }
}
