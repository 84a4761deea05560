//! The metrics endpoint: `GET /metrics` on its own thread, answering with the
//! Prometheus (OpenMetrics) text format rendered by `prometheus-client` from the
//! [`Metrics`] the engine and gateway threads keep. The thread only reads those; it
//! never talks to the other threads.
//!
//! The HTTP side is deliberately minimal (one request per connection, `Connection:
//! close`, a 2-second read and write timeout, requests up to 8 KiB): a scraper needs
//! nothing more, and an HTTP server crate would bring an async runtime into a process
//! whose two cores belong to the gateway and the engine.

use crate::metrics::{DisconnectCause, Metrics, PAYMENT_ACTIONS, PAYMENT_KINDS, Stage};
use crate::wire::SessionReason;
use fincore_engine::{CommandKind, RejectReason};
use fincore_journal::DurabilityHandle;
use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency histogram buckets, in seconds (+Inf follows).
pub const BUCKETS_S: [f64; 19] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// Quantiles exported as gauges beside each histogram (what a person at a terminal
/// wants; Prometheus can also compute them from the buckets).
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// The running endpoint.
pub struct Exporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Starts serving `metrics` on `listener` (already bound, so that a server
    /// can claim its addresses before it touches its data directory) on a thread of
    /// its own.
    pub fn start(
        listener: TcpListener,
        metrics: Arc<Metrics>,
        durability: DurabilityHandle,
    ) -> std::io::Result<Exporter> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(FincoreCollector { metrics, durability }));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fincore-metrics".into())
            .spawn(move || serve(&listener, &registry, &stopping))?;
        Ok(Exporter { addr, stop, thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Release);
            // Wake the blocking accept.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = thread.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: &TcpListener, registry: &Registry, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        if let Ok(stream) = stream {
            // A scraper that misbehaves only loses its own answer.
            let _ = answer(stream, registry);
        }
    }
}

/// Reads one request head and answers it.
fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() + n > 8192 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            let mut body = String::with_capacity(16 * 1024);
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => ("200 OK", CONTENT_TYPE, body),
                Err(_) => ("500 Internal Server Error", "text/plain", "encoding failed\n".into()),
            }
        }
        ("GET", "/") => ("200 OK", "text/plain", "fincore: metrics at /metrics\n".into()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found; try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Renders [`Metrics`] at each scrape.
struct FincoreCollector {
    metrics: Arc<Metrics>,
    durability: DurabilityHandle,
}

impl std::fmt::Debug for FincoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FincoreCollector")
    }
}

/// Writes a metric family: `each` is called with a closure that encodes one series.
fn family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    each: impl FnOnce(&mut MetricEncoder) -> Result<(), Error> + 'a,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    each(&mut metric)
}

/// One counter series (`labels` may be empty).
fn counter(metric: &mut MetricEncoder, labels: &[(&str, &str)], value: u64) -> Result<(), Error> {
    if labels.is_empty() {
        return metric.encode_counter::<NoLabelSet, _, u64>(&value, None);
    }
    metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// One gauge series (`labels` may be empty).
fn gauge(
    metric: &mut MetricEncoder,
    labels: &[(&str, &str)],
    value: impl EncodeGaugeValue,
) -> Result<(), Error> {
    if labels.is_empty() {
        return metric.encode_gauge(&value);
    }
    metric.encode_family(&labels)?.encode_gauge(&value)
}

/// Counters labelled with a reason's name and code, for those counted at least once
/// (sparse): command rejects and session rejects.
fn reason_counters<R: std::fmt::Debug>(
    metric: &mut MetricEncoder,
    counts: impl Iterator<Item = (R, u32, u64)>,
) -> Result<(), Error> {
    for (reason, code, count) in counts.filter(|&(_, _, count)| count > 0) {
        let (name, code) = (format!("{reason:?}"), code.to_string());
        counter(metric, &[("reason", name.as_str()), ("code", code.as_str())], count)?;
    }
    Ok(())
}

impl Collector for FincoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
        let (engine, gateway) = (&self.metrics.engine, &self.metrics.gateway);
        let e = &mut encoder;
        let none: &[(&str, &str)] = &[];

        family(
            e,
            "fincore_commands",
            "Commands journaled and applied, by kind and outcome (a series appears at its first count).",
            MetricType::Counter,
            |m| {
                for kind in CommandKind::ALL {
                    for (outcome, cell) in
                        ["accepted", "rejected"].iter().zip(&engine.commands[kind as usize])
                    {
                        if cell.get() > 0 {
                            counter(m, &[("kind", kind.name()), ("outcome", outcome)], cell.get())?;
                        }
                    }
                }
                Ok(())
            },
        )?;
        family(
            e,
            "fincore_queries",
            "Queries answered (not journaled).",
            MetricType::Counter,
            |m| counter(m, none, engine.queries.get()),
        )?;
        family(
            e,
            "fincore_rejects",
            "Rejected commands and queries by reason (docs/PROTOCOL.md reject codes).",
            MetricType::Counter,
            |m| {
                let cells = RejectReason::ALL.iter().zip(engine.rejects.iter());
                reason_counters(m, cells.map(|(r, cell)| (r, u32::from(r.code()), cell.get())))
            },
        )?;
        family(e, "fincore_fills", "Fills (trades).", MetricType::Counter, |m| {
            counter(m, none, engine.fills.get())
        })?;
        let instruments = engine.instruments.lock().map(|i| i.clone()).unwrap_or_default();
        family(
            e,
            "fincore_traded_lots",
            "Quantity traded, in lots, by instrument.",
            MetricType::Counter,
            |m| {
                for (id, symbol) in &instruments {
                    counter(
                        m,
                        &[("instrument", symbol.as_str())],
                        engine.traded_lots[usize::from(*id)].get(),
                    )?;
                }
                Ok(())
            },
        )?;
        family(
            e,
            "fincore_payments",
            "Payment events by payment kind and action (a series appears at its first count).",
            MetricType::Counter,
            |m| {
                for (kind, row) in PAYMENT_KINDS.iter().zip(engine.payments.iter()) {
                    for (action, cell) in PAYMENT_ACTIONS.iter().zip(row) {
                        if cell.get() > 0 {
                            counter(m, &[("kind", *kind), ("action", *action)], cell.get())?;
                        }
                    }
                }
                Ok(())
            },
        )?;
        family(
            e,
            "fincore_journal_records",
            "Journal records appended by this process.",
            MetricType::Counter,
            |m| counter(m, none, engine.journal_records.get()),
        )?;
        family(
            e,
            "fincore_journal_bytes",
            "Journal bytes appended by this process (records with headers and padding).",
            MetricType::Counter,
            |m| counter(m, none, engine.journal_bytes.get()),
        )?;
        family(e, "fincore_snapshots", "Snapshots by outcome.", MetricType::Counter, |m| {
            counter(m, &[("outcome", "written")], engine.snapshots.get())?;
            counter(m, &[("outcome", "failed")], engine.snapshot_failures.get())
        })?;
        family(
            e,
            "fincore_logins",
            "Login attempts by outcome (throttled: refused unchecked after repeated failures).",
            MetricType::Counter,
            |m| {
                counter(m, &[("outcome", "ok")], gateway.logins_ok.get())?;
                counter(m, &[("outcome", "failed")], gateway.logins_failed.get())?;
                counter(m, &[("outcome", "throttled")], gateway.logins_throttled.get())
            },
        )?;
        family(
            e,
            "fincore_connections",
            "TCP connections by outcome (refused: at the connection limit).",
            MetricType::Counter,
            |m| {
                counter(m, &[("outcome", "accepted")], gateway.connections_accepted.get())?;
                counter(m, &[("outcome", "refused")], gateway.connections_refused.get())
            },
        )?;
        family(
            e,
            "fincore_session_rejects",
            "Session rejects sent, by reason (docs/PROTOCOL.md session codes).",
            MetricType::Counter,
            |m| {
                let cells = SessionReason::ALL.iter().zip(gateway.session_rejects.iter());
                reason_counters(m, cells.map(|(r, cell)| (r, r.code(), cell.get())))
            },
        )?;
        family(
            e,
            "fincore_disconnects",
            "Connections ended, by cause.",
            MetricType::Counter,
            |m| {
                for (cause, cell) in DisconnectCause::ALL.iter().zip(gateway.disconnects.iter()) {
                    counter(m, &[("cause", cause.label())], cell.get())?;
                }
                Ok(())
            },
        )?;

        let gauges: [(&str, &str, u64); 9] = [
            ("fincore_connections_open", "TCP connections open.", gateway.connections_open.get()),
            ("fincore_sessions_open", "Logged-in sessions open.", gateway.sessions_open.get()),
            (
                "fincore_inbound_ring_occupancy",
                "Messages published to the engine's inbound ring and not yet taken.",
                gateway.inbound_published.get().saturating_sub(engine.inbound_consumed.get()),
            ),
            (
                "fincore_outbound_ring_occupancy",
                "Items the engine published to the gateway and the gateway has not yet taken.",
                engine.outbound_published.get().saturating_sub(gateway.outbound_drained.get()),
            ),
            (
                "fincore_outbound_buffered_bytes",
                "Bytes waiting in sessions' output buffers (all sessions).",
                gateway.outbound_buffered_bytes.get(),
            ),
            ("fincore_journal_seq", "The last journaled sequence.", engine.journal_seq.get()),
            (
                "fincore_journal_durable_seq",
                "The highest sequence durable in the journal's mode.",
                self.durability.durable_seq(),
            ),
            (
                "fincore_last_snapshot_seq",
                "Sequence of the last snapshot this process wrote or answered with (0: none yet).",
                engine.last_snapshot_seq.get(),
            ),
            (
                "fincore_journal_failed",
                "1 once a journal sync failed (fsync mode): restart needed.",
                u64::from(self.durability.failed()),
            ),
        ];
        for (name, help, value) in gauges {
            family(e, name, help, MetricType::Gauge, |m| gauge(m, none, value))?;
        }
        family(
            e,
            "fincore_resting_orders",
            "Resting orders by instrument (refreshed every 65536 messages, and at most every 50 ms when idle).",
            MetricType::Gauge,
            |m| {
                for (id, symbol) in &instruments {
                    gauge(
                        m,
                        &[("instrument", symbol.as_str())],
                        engine.resting_orders[usize::from(*id)].get(),
                    )?;
                }
                Ok(())
            },
        )?;

        let stages: Vec<(Stage, Histogram<u64>)> =
            Stage::ALL.iter().map(|s| (*s, self.metrics.stage(*s))).collect();
        family(
            e,
            "fincore_stage_latency_seconds",
            "Per-stage latency of sampled messages (one in 64), cumulative since start.",
            MetricType::Histogram,
            |m| {
                for (stage, histogram) in &stages {
                    let buckets = buckets_of(histogram);
                    let sum = histogram.mean() * histogram.len() as f64 / 1e9;
                    m.encode_family(&[("stage", stage.label())])?.encode_histogram::<NoLabelSet>(
                        sum,
                        histogram.len(),
                        &buckets,
                        None,
                    )?;
                }
                Ok(())
            },
        )?;
        family(
            e,
            "fincore_stage_latency_quantile_seconds",
            "Quantiles of the same samples (and the maximum as quantile 1).",
            MetricType::Gauge,
            |m| {
                for (stage, histogram) in &stages {
                    for q in QUANTILES.iter().chain(&[1.0]) {
                        let value = histogram.value_at_quantile(*q) as f64 / 1e9;
                        let quantile = q.to_string();
                        gauge(
                            m,
                            &[("stage", stage.label()), ("quantile", quantile.as_str())],
                            value,
                        )?;
                    }
                }
                Ok(())
            },
        )
    }
}

/// Per-bucket counts (not cumulative) at [`BUCKETS_S`], then +Inf.
fn buckets_of(histogram: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut buckets: Vec<(f64, u64)> = BUCKETS_S.iter().map(|b| (*b, 0)).collect();
    buckets.push((f64::MAX, 0));
    for value in histogram.iter_recorded() {
        let seconds = value.value_iterated_to() as f64 / 1e9;
        let slot = BUCKETS_S.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS_S.len());
        buckets[slot].1 += value.count_at_value();
    }
    buckets
}
