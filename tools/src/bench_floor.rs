//! `fincore bench floor`: what this machine gives any program, with no fincore code on
//! the path, so that the end-to-end figures can be read against it.
//!
//! 1. **Stalls.** One thread reads the clock in a loop for `--stall-secs` and counts
//!    the gaps between consecutive reads: on a virtual machine these are the times the
//!    host (or the guest kernel's interrupts) took the vCPU away. No thread can answer
//!    faster than its vCPU runs, so the gaps bound every tail from below.
//! 2. **Loopback echo.** A client sends 64-byte messages over TCP on 127.0.0.1 at
//!    `--rate` for `--duration`, open-loop on the load tool's schedule (the commands
//!    due in each 100 us quantum leave together, woken by a `timerfd`), and an echo
//!    server writes every byte straight back. A message's round trip is measured from
//!    its due time, as `fincore load` measures a command's. The run is made twice:
//!    once echoing on the reading thread, once handing every read to a second thread
//!    and back through channels (the server's gateway-to-engine-and-back hop, without
//!    the engine). Four threads in all, none spinning: the shape of `fincore serve`
//!    and `fincore load` on the same two vCPUs, with nothing to do.

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::load::{SEND_QUANTUM, arm_timer_once};

/// Bytes per message: about an order's frame.
const MESSAGE: usize = 64;
/// Clock gaps at or above this are counted as stalls.
const STALL_MIN: Duration = Duration::from_micros(10);

#[derive(Args)]
pub struct FloorArgs {
    /// Seconds of clock reading for the stall count (0: skip it).
    #[arg(long, default_value_t = 5.0)]
    stall_secs: f64,
    /// Echo messages per second.
    #[arg(long, default_value_t = 100_000)]
    rate: u32,
    /// Seconds of sending per echo run (0: skip the echo runs).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &FloorArgs) -> Result<()> {
    if !(args.stall_secs >= 0.0 && args.duration >= 0.0) || args.rate == 0 {
        bail!("--stall-secs and --duration must be 0 or more, --rate positive");
    }
    println!("floor bench: what the machine gives with no fincore code on the path");
    let stalls = (args.stall_secs > 0.0).then(|| Stalls::measure(secs(args.stall_secs)));
    if let Some(s) = &stalls {
        println!(
            "  stalls       {:.0} s on one spinning thread: {} gaps >= 100 us, {} >= 1 ms, \
             max {:.0} us; {:.2} % of the time in gaps >= 10 us",
            args.stall_secs,
            s.over_100us,
            s.over_1ms,
            s.max.as_secs_f64() * 1e6,
            s.lost_percent
        );
    }
    let mut echoes = Vec::new();
    if args.duration > 0.0 {
        for handoff in [false, true] {
            let histogram = echo(args.rate, secs(args.duration), handoff)?;
            let p = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
            println!(
                "  echo         {} msg/s, {}: p50={:.1} us p99={:.1} us p99.9={:.1} us max={:.1} us",
                args.rate,
                if handoff { "via a second thread" } else { "direct" },
                p(0.5),
                p(0.99),
                p(0.999),
                histogram.max() as f64 / 1e3
            );
            echoes.push((handoff, histogram));
        }
    }
    if args.json {
        let messages = echoes.first().map_or(0, |(_, h)| h.len());
        let mut fields = vec![format!("\"rate\":{},\"messages\":{messages}", args.rate)];
        if let Some(s) = &stalls {
            fields.push(format!(
                "\"stall_secs\":{},\"stalls_over_100us\":{},\"stalls_over_1ms\":{},\
                 \"stall_max_us\":{:.1},\"stall_lost_percent\":{:.3}",
                args.stall_secs,
                s.over_100us,
                s.over_1ms,
                s.max.as_secs_f64() * 1e6,
                s.lost_percent
            ));
        }
        for (handoff, h) in &echoes {
            let name = if *handoff { "handoff" } else { "echo" };
            let p = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
            fields.push(format!(
                "\"{name}_p50_us\":{:.1},\"{name}_p99_us\":{:.1},\"{name}_p999_us\":{:.1},\
                 \"{name}_max_us\":{:.1}",
                p(0.5),
                p(0.99),
                p(0.999),
                h.max() as f64 / 1e3
            ));
        }
        println!("{{{}}}", fields.join(","));
    }
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

struct Stalls {
    over_100us: u64,
    over_1ms: u64,
    max: Duration,
    lost_percent: f64,
}

impl Stalls {
    fn measure(length: Duration) -> Stalls {
        let start = Instant::now();
        let end = start + length;
        let mut stalls =
            Stalls { over_100us: 0, over_1ms: 0, max: Duration::ZERO, lost_percent: 0.0 };
        let mut lost = Duration::ZERO;
        let mut previous = start;
        while previous < end {
            let now = Instant::now();
            let gap = now - previous;
            previous = now;
            if gap >= STALL_MIN {
                lost += gap;
                stalls.over_100us += u64::from(gap >= Duration::from_micros(100));
                stalls.over_1ms += u64::from(gap >= Duration::from_millis(1));
                stalls.max = stalls.max.max(gap);
            }
        }
        stalls.lost_percent = 100.0 * lost.as_secs_f64() / start.elapsed().as_secs_f64();
        stalls
    }
}

/// One echo run: returns round trips in ns, each from its message's due time.
fn echo(rate: u32, length: Duration, handoff: bool) -> Result<Histogram<u64>> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the echo server")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || serve_echo(&listener, handoff));
    let stream = TcpStream::connect(addr).context("connecting to the echo server")?;
    stream.set_nodelay(true)?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let count = (length.as_secs_f64() * f64::from(rate)) as u64;
    let start = Instant::now() + Duration::from_millis(10);
    let mut reader = stream.try_clone()?;
    let receiver = thread::spawn(move || -> Result<Histogram<u64>> {
        let mut histogram = Histogram::new_with_bounds(1, 60_000_000_000, 3)?;
        let mut buf = vec![0u8; 64 * 1024];
        let (mut filled, mut received) = (0, 0);
        while received < count {
            let n = reader.read(&mut buf[filled..]).context("reading echoes")?;
            if n == 0 {
                bail!("the echo server closed after {received} of {count} messages");
            }
            filled += n;
            let now = nanos_since(start);
            let whole = filled / MESSAGE * MESSAGE;
            for message in buf[..whole].chunks_exact(MESSAGE) {
                let due = u64::from_le_bytes(message[..8].try_into().expect("8 bytes"));
                histogram.saturating_record(now.saturating_sub(due).max(1));
                received += 1;
            }
            buf.copy_within(whole..filled, 0);
            filled -= whole;
        }
        Ok(histogram)
    });
    send_on_schedule(stream, start, interval, count)?;
    let histogram = receiver.join().map_err(|_| anyhow::anyhow!("the echo reader panicked"))??;
    server.join().map_err(|_| anyhow::anyhow!("the echo server panicked"))??;
    Ok(histogram)
}

/// Message `j` is due at `start + j * interval`; every round sends what is due, then
/// sleeps on a timerfd until the next message is due, but at least a quantum after
/// this round was scheduled. Shuts the write side down at the end.
fn send_on_schedule(
    mut stream: TcpStream,
    start: Instant,
    interval: Duration,
    count: u64,
) -> Result<()> {
    use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
    let timer = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC)?;
    let mut out = Vec::with_capacity(64 * 1024);
    let (mut sent, mut round_at) = (0u64, start);
    let due = |j: u64| start + interval.mul_f64(j as f64);
    while sent < count {
        // The load tool's schedule: what fell due leaves together, a quantum apart.
        arm_timer_once(&timer, round_at)?;
        let mut expirations = [0u8; 8];
        rustix::io::read(&timer, &mut expirations)?;
        let now = Instant::now();
        out.clear();
        while sent < count && due(sent) <= now {
            let due_ns = nanos_since_at(start, due(sent));
            out.extend_from_slice(&due_ns.to_le_bytes());
            out.resize(out.len() + MESSAGE - 8, 0);
            sent += 1;
        }
        stream.write_all(&out).context("sending")?;
        round_at = (round_at + SEND_QUANTUM).max(due(sent));
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(())
}

/// Accepts one connection and writes back what it reads until the client shuts its
/// side down; with `handoff`, each read goes to a second thread and comes back first.
fn serve_echo(listener: &TcpListener, handoff: bool) -> Result<()> {
    let (mut stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let (to_worker, worker_in) = mpsc::channel::<Vec<u8>>();
    let (worker_out, from_worker) = mpsc::channel::<Vec<u8>>();
    let worker = handoff.then(|| {
        thread::spawn(move || {
            for chunk in worker_in {
                if worker_out.send(chunk).is_err() {
                    break;
                }
            }
        })
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if handoff {
            to_worker.send(buf[..n].to_vec())?;
            let chunk = from_worker.recv()?;
            stream.write_all(&chunk)?;
        } else {
            stream.write_all(&buf[..n])?;
        }
    }
    drop(to_worker);
    if let Some(worker) = worker {
        worker.join().map_err(|_| anyhow::anyhow!("the echo worker panicked"))?;
    }
    Ok(())
}

fn nanos_since(start: Instant) -> u64 {
    nanos_since_at(start, Instant::now())
}

fn nanos_since_at(start: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
}
