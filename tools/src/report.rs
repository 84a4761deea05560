//! Latency reports a person can read: the `.hgrm` percentile-distribution text format
//! (as HdrHistogram's other ports print it, so existing plotters accept it) and a small
//! self-contained SVG chart of latency by percentile on the usual log "nines" axis.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::Path;

/// One point of the percentile distribution: (value, percentile in 0..=1, count).
fn distribution(histogram: &Histogram<u64>) -> Vec<(u64, f64, u64)> {
    let mut points = Vec::new();
    let mut total = 0;
    for step in histogram.iter_quantiles(5) {
        total += step.count_since_last_iteration();
        points.push((step.value_iterated_to(), step.quantile_iterated_to(), total));
    }
    points
}

/// Writes the `.hgrm` text: value (in `unit`), percentile, total count, 1/(1-p).
pub fn write_hgrm(histogram: &Histogram<u64>, path: &Path, unit: &str) -> Result<()> {
    let mut text = format!("# latency in {unit}\n");
    text.push_str("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    for (value, quantile, total) in distribution(histogram) {
        let inverse =
            if quantile < 1.0 { format!("{:.2}", 1.0 / (1.0 - quantile)) } else { "inf".into() };
        writeln!(text, "{value:12.3} {quantile:14.12} {total:10} {inverse:>14}")?;
    }
    let (mean, stdev) = (histogram.mean(), histogram.stdev());
    writeln!(text, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]")?;
    let (max, count) = (histogram.max(), histogram.len());
    writeln!(text, "#[Max     = {max:12.3}, Total count    = {count:12}]")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// An empty latency histogram: 1 ns to 60 s, 3 significant digits (what every
/// benchmark here records into).
pub fn latency_histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

/// Draws latency (log scale) against percentile (log "nines" scale) as an SVG file.
pub fn write_svg(histogram: &Histogram<u64>, path: &Path, title: &str, unit: &str) -> Result<()> {
    let (width, height, margin) = (800.0, 420.0, 70.0);
    let nines_max = 5.0; // up to 99.999 %
    let points: Vec<(f64, f64)> = distribution(histogram)
        .into_iter()
        .filter(|(_, q, _)| *q < 1.0)
        .map(|(v, q, _)| ((-(1.0 - q).log10()).min(nines_max), (v.max(1) as f64).log10()))
        .collect();
    let top = (histogram.max().max(10) as f64).log10().ceil();
    let x = |nines: f64| margin + nines / nines_max * (width - 2.0 * margin);
    let y = |log_value: f64| height - margin - log_value / top * (height - 2.0 * margin);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' \
         font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='24' text-anchor='middle' font-size='15'>{title}</text>\n",
        width / 2.0
    );
    for (nines, label) in
        [(0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%"), (5.0, "99.999%")]
    {
        let px = x(nines);
        let (y0, y1) = (y(0.0), y(top));
        writeln!(svg, "<line x1='{px}' y1='{y0}' x2='{px}' y2='{y1}' stroke='#ddd'/>")?;
        writeln!(svg, "<text x='{px}' y='{}' text-anchor='middle'>{label}</text>", y0 + 18.0)?;
    }
    for decade in 0..=top as u32 {
        let py = y(decade as f64);
        let (x0, x1) = (x(0.0), x(nines_max));
        writeln!(svg, "<line x1='{x0}' y1='{py}' x2='{x1}' y2='{py}' stroke='#ddd'/>")?;
        let label = decade_label(decade, unit);
        writeln!(svg, "<text x='{}' y='{}' text-anchor='end'>{label}</text>", x0 - 6.0, py + 4.0)?;
    }
    let path_data: Vec<String> =
        points.iter().map(|(n, v)| format!("{:.1},{:.1}", x(*n), y(*v))).collect();
    writeln!(
        svg,
        "<polyline fill='none' stroke='#1f5fbf' stroke-width='2' points='{}'/>",
        path_data.join(" ")
    )?;
    writeln!(
        svg,
        "<text x='{}' y='{}' text-anchor='middle'>percentile</text>",
        width / 2.0,
        height - 12.0
    )?;
    writeln!(
        svg,
        "<text x='16' y='{}' transform='rotate(-90 16 {})' text-anchor='middle'>latency (log scale)</text>",
        height / 2.0,
        height / 2.0
    )?;
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// `10^decade` of `unit` as a short label: nanoseconds become "100 ns", "10 us",
/// "1 ms", "1 s"; other units print the number.
fn decade_label(decade: u32, unit: &str) -> String {
    if unit != "ns" {
        return 10u64.pow(decade).to_string();
    }
    let (scale, name) = match decade {
        0..=2 => (0, "ns"),
        3..=5 => (3, "us"),
        6..=8 => (6, "ms"),
        _ => (9, "s"),
    };
    format!("{} {name}", 10u64.pow(decade - scale))
}
