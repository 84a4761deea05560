//! `fincore stats`: the metrics endpoint of a running server (`serve --metrics ADDR`)
//! as one screen for a person at a terminal, refreshed every second: rates from the
//! counters' differences, gauges, and per-stage latency quantiles. Also the scraper
//! `bench pipeline --metrics` runs beside its measurement.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Arguments of `fincore stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// The server's metrics address (`fincore serve --metrics ADDR`).
    #[arg(long, default_value = "127.0.0.1:9100")]
    addr: String,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Print one screen (totals, no rates) and exit.
    #[arg(long)]
    once: bool,
}

/// `GET path` from `addr`; the body of a 200 answer.
pub fn http_get(addr: &str, path: &str) -> Result<String> {
    let target = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    // Something else on the port (the trading port, say) resets the connection, closes
    // it, stays silent or answers in its own protocol: all of them mean the same thing
    // to the person who typed the address.
    let not_http = || format!("{addr} did not answer HTTP; is it the --metrics address?");
    let answer = exchange(&mut stream, addr, path).with_context(not_http)?;
    let answer = String::from_utf8(answer)
        .ok()
        .filter(|answer| answer.starts_with("HTTP/"))
        .with_context(not_http)?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no end of the HTTP head")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("{addr}{path}: {status}");
    }
    Ok(body.to_string())
}

/// Sends the request and reads the whole answer (the server closes the connection).
fn exchange(stream: &mut TcpStream, addr: &str, path: &str) -> std::io::Result<Vec<u8>> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// One scrape: each series (`name{labels}`) with its value.
#[derive(Clone, Debug, Default)]
pub struct Scrape(pub BTreeMap<String, f64>);

impl Scrape {
    /// Parses the text exposition format (comments and `# EOF` skipped).
    pub fn parse(text: &str) -> Scrape {
        let series = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Scrape(series)
    }

    /// Scrapes `addr`'s `/metrics`.
    pub fn fetch(addr: &str) -> Result<Scrape> {
        Ok(Scrape::parse(&http_get(addr, "/metrics")?))
    }

    /// The value of one exact series (0 if absent).
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// The sum over every series of a metric whose labels contain all of `having`.
    pub fn sum(&self, metric: &str, having: &[&str]) -> f64 {
        self.series(metric)
            .filter(|(labels, _)| having.iter().all(|h| labels.contains(h)))
            .map(|(_, v)| v)
            // Not `.sum()`: an empty f64 sum is -0.0, which prints as "-0".
            .fold(0.0, |total, v| total + v)
    }

    /// A one-label metric as "value-of-label count, ..." ("none" if empty), leaving out
    /// zeros if `skip_zero`.
    fn by_label(&self, metric: &str, label: &str, skip_zero: bool) -> String {
        let prefix = format!("{label}=");
        let items: Vec<String> = self
            .series(metric)
            .filter(|(_, v)| !skip_zero || *v > 0.0)
            .map(|(labels, v)| {
                format!("{} {v:.0}", labels.trim_start_matches(&prefix).trim_matches('"'))
            })
            .collect();
        if items.is_empty() { "none".into() } else { items.join(", ") }
    }

    /// The series of a metric: (labels text, value).
    pub fn series<'a>(&'a self, metric: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.iter().filter_map(move |(series, value)| {
            let rest = series.strip_prefix(metric)?;
            match rest.strip_prefix('{') {
                Some(labels) => Some((labels.trim_end_matches('}'), *value)),
                None if rest.is_empty() => Some(("", *value)),
                None => None,
            }
        })
    }
}

/// A thread scraping an exporter once a second (for `bench pipeline --metrics`).
pub struct Scraper {
    exporter: fincore_gateway::exporter::Exporter,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64>>,
}

impl Scraper {
    /// Starts scraping `exporter`.
    pub fn start(exporter: fincore_gateway::exporter::Exporter) -> Result<Scraper> {
        let addr: SocketAddr = exporter.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("scraper".into()).spawn(move || {
            let mut scrapes = 0;
            while !stopping.load(Ordering::Acquire) {
                let scrape = Scrape::fetch(&addr.to_string())?;
                if !scrape.0.contains_key("fincore_journal_records_total") {
                    bail!("a scrape without fincore_journal_records_total");
                }
                scrapes += 1;
                for _ in 0..10 {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(scrapes)
        })?;
        Ok(Scraper { exporter, stop, thread })
    }

    /// Stops; returns how many scrapes succeeded (an error if one failed).
    pub fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Release);
        let scrapes = self.thread.join().map_err(|_| anyhow::anyhow!("scraper panicked"))?;
        self.exporter.stop();
        scrapes
    }
}

pub fn run(args: &StatsArgs) -> Result<()> {
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        bail!("--interval must be positive");
    }
    let mut previous: Option<(Instant, Scrape)> = None;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let scrape = Scrape::fetch(&args.addr)?;
        let now = Instant::now();
        let rates =
            previous.as_ref().map(|(at, before)| (now.duration_since(*at).as_secs_f64(), before));
        let screen = render(&args.addr, &scrape, rates);
        if terminal && !args.once {
            print!("\x1b[2J\x1b[H");
        }
        println!("{screen}");
        std::io::stdout().flush()?;
        if args.once {
            return Ok(());
        }
        previous = Some((now, scrape));
        std::thread::sleep(Duration::from_secs_f64(args.interval));
    }
}

/// One screen. With `rates` (seconds since, previous scrape) counters show per second.
fn render(addr: &str, s: &Scrape, rates: Option<(f64, &Scrape)>) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let rate = |metric: &str, having: &[&str]| -> String {
        let total = s.sum(metric, having);
        match rates {
            Some((seconds, before)) if seconds > 0.0 => {
                format!("{:>10.0}/s", (total - before.sum(metric, having)) / seconds)
            }
            _ => format!("{total:>12.0}"),
        }
    };
    let per = if rates.is_some() { "per second" } else { "totals" };
    line(format!("fincore stats  {addr}  ({per})"));
    line(format!(
        "journal seq {:.0}  durable {:.0}  last snapshot {:.0}{}",
        s.get("fincore_journal_seq"),
        s.get("fincore_journal_durable_seq"),
        s.get("fincore_last_snapshot_seq"),
        if s.get("fincore_journal_failed") > 0.0 { "  JOURNAL FAILED: restart" } else { "" }
    ));
    line(format!(
        "connections {:.0}  sessions {:.0}  inbound ring {:.0}  outbound ring {:.0}  output buffered {:.0} B",
        s.get("fincore_connections_open"),
        s.get("fincore_sessions_open"),
        s.get("fincore_inbound_ring_occupancy"),
        s.get("fincore_outbound_ring_occupancy"),
        s.get("fincore_outbound_buffered_bytes"),
    ));
    line(String::new());
    line(format!(
        "commands accepted {}",
        rate("fincore_commands_total", &["outcome=\"accepted\""])
    ));
    line(format!(
        "commands rejected {}",
        rate("fincore_commands_total", &["outcome=\"rejected\""])
    ));
    line(format!("queries           {}", rate("fincore_queries_total", &[])));
    line(format!("fills             {}", rate("fincore_fills_total", &[])));
    line(format!("payments          {}", rate("fincore_payments_total", &[])));
    line(format!("journal bytes     {}", rate("fincore_journal_bytes_total", &[])));
    line(format!("session rejects   {}", rate("fincore_session_rejects_total", &[])));
    line(format!(
        "logins ok {:.0}  failed {:.0}  throttled {:.0}",
        s.get("fincore_logins_total{outcome=\"ok\"}"),
        s.get("fincore_logins_total{outcome=\"failed\"}"),
        s.get("fincore_logins_total{outcome=\"throttled\"}")
    ));
    line(format!("disconnects       {}", s.by_label("fincore_disconnects_total", "cause", true)));
    let mut rejects: Vec<(&str, f64)> = s.series("fincore_rejects_total").collect();
    rejects.sort_by(|a, b| b.1.total_cmp(&a.1));
    line("top rejects:".into());
    if rejects.is_empty() {
        line("  none".into());
    }
    for (labels, count) in rejects.iter().take(5) {
        line(format!("  {count:>10.0}  {labels}"));
    }
    line(String::new());
    line(format!("{:<16} {:>10} {:>10} {:>10} {:>10}", "stage (us)", "p50", "p99", "p99.9", "max"));
    for stage in [
        "read_to_publish",
        "ring_wait",
        "journal_append",
        "engine_apply",
        "apply_to_write",
        "total",
    ] {
        let q = |quantile: &str| {
            let series = format!(
                "fincore_stage_latency_quantile_seconds{{stage=\"{stage}\",quantile=\"{quantile}\"}}"
            );
            format!("{:>10.1}", s.get(&series) * 1e6)
        };
        line(format!("{stage:<16} {} {} {} {}", q("0.5"), q("0.99"), q("0.999"), q("1")));
    }
    line(String::new());
    line(format!(
        "resting orders    {}",
        s.by_label("fincore_resting_orders", "instrument", false)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# TYPE fincore_commands counter
fincore_commands_total{kind=\"new_order\",outcome=\"accepted\"} 90
fincore_commands_total{kind=\"cancel\",outcome=\"accepted\"} 10
fincore_commands_total{kind=\"cancel\",outcome=\"rejected\"} 3
fincore_fills_total 7
fincore_rejects_total{reason=\"UnknownOrder\",code=\"700\"} 3
fincore_disconnects_total{cause=\"logout\"} 2
fincore_disconnects_total{cause=\"slow_consumer\"} 0
fincore_journal_seq 170
fincore_resting_orders{instrument=\"BTC-USD\"} 12
fincore_resting_orders{instrument=\"ETH-USD\"} 0
# EOF
";

    fn row<'a>(screen: &'a str, name: &str) -> &'a str {
        let line = screen.lines().find(|l| l.starts_with(name)).expect("the row is shown");
        line[name.len()..].trim()
    }

    #[test]
    fn totals_screen_sums_series_and_shows_absent_families_as_zero() {
        let scrape = Scrape::parse(EXPOSITION);
        assert_eq!(scrape.sum("fincore_commands_total", &["outcome=\"accepted\""]), 100.0);
        assert_eq!(scrape.get("fincore_journal_seq"), 170.0);
        let screen = render("127.0.0.1:9100", &scrape, None);
        assert_eq!(row(&screen, "commands accepted"), "100");
        assert_eq!(row(&screen, "commands rejected"), "3");
        assert_eq!(row(&screen, "fills"), "7");
        // No payment or session-reject series at all (sparse families): zero, not "-0".
        assert_eq!(row(&screen, "payments"), "0");
        assert_eq!(row(&screen, "session rejects"), "0");
        assert_eq!(row(&screen, "disconnects"), "logout 2");
        assert_eq!(row(&screen, "resting orders"), "BTC-USD 12, ETH-USD 0");
        assert!(screen.contains("reason=\"UnknownOrder\",code=\"700\""), "{screen}");
    }

    #[test]
    fn rates_screen_divides_the_increase_by_the_interval() {
        let before = Scrape::parse(EXPOSITION);
        let after =
            Scrape::parse(&EXPOSITION.replace("fincore_fills_total 7", "fincore_fills_total 27"));
        let screen = render("127.0.0.1:9100", &after, Some((2.0, &before)));
        assert_eq!(row(&screen, "fills"), "10/s");
        assert_eq!(row(&screen, "payments"), "0/s");
    }
}
