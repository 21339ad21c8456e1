//! Settings from the environment, the aligned report lines, and the arithmetic of the
//! figures (percentiles, Prometheus histograms, a small random number generator).

use std::time::Duration;

/// A size from the environment variable `name`, or `default`.
pub(crate) fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of sizes from `name`, or `default`.
pub(crate) fn setting_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
        _ => default.to_vec(),
    }
}

/// Lines held back by [`hold`] instead of printed.
static HELD: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// One aligned line of figures (held back while [`hold`] is on).
pub(crate) fn report(what: &str, figure: &str) {
    let line = format!("{what:<56} {figure}");
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    match held.as_mut() {
        Some(lines) => lines.push(line),
        None => print_line(&line),
    }
}

fn print_line(line: &str) {
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
}

/// From now on, [`report`] keeps its lines until [`take_held`], so figures measured
/// in between the halves of another phase are printed after it.
pub(crate) fn hold() {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    held.get_or_insert_with(Vec::new);
}

/// The lines held since [`hold`]; [`report`] prints again.
pub(crate) fn take_held() -> Vec<String> {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default()
}

/// Prints lines taken with [`take_held`].
pub(crate) fn print_held(lines: &[String]) {
    for line in lines {
        print_line(line);
    }
}

/// A section's title line.
pub(crate) fn section(title: &str) {
    #[allow(clippy::print_stdout)]
    {
        println!();
        println!("== {title}");
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values (`p` in 0..=1); NaN when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `p50 / p99 / max` of values in milliseconds, sorting them.
pub(crate) fn p50_p99_max(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return "none".to_owned();
    }
    format!(
        "{:.1} / {:.1} / {:.1} ms",
        percentile(values, 0.5),
        percentile(values, 0.99),
        values[values.len() - 1]
    )
}

/// `p50 / p99` of latencies in milliseconds, sorting them.
pub(crate) fn p50_p99(latencies: &mut [Duration]) -> String {
    let mut values: Vec<f64> = latencies.iter().map(|d| ms(*d)).collect();
    values.sort_by(f64::total_cmp);
    format!(
        "{:.1} / {:.1} ms",
        percentile(&values, 0.5),
        percentile(&values, 0.99)
    )
}

/// A Prometheus histogram read from the text exposition: cumulative counts per upper
/// bound, in bound order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Histogram {
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    pub(crate) fn parse(text: &str, name: &str) -> Histogram {
        let prefix = format!("{name}_bucket");
        let buckets = text
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .filter_map(|line| {
                let le = line.split("le=\"").nth(1)?.split('"').next()?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, line.rsplit(' ').next()?.parse().ok()?))
            })
            .collect();
        Histogram { buckets }
    }

    /// What was observed after `earlier` (a reading of the same histogram).
    pub(crate) fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(bound, count)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| b == bound)
                    .map_or(0.0, |(_, c)| *c);
                (*bound, count - before)
            })
            .collect();
        Histogram { buckets }
    }

    pub(crate) fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, count)| *count)
    }

    /// The upper bound of the bucket holding quantile `q`.
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total <= 0.0 {
            return f64::NAN;
        }
        self.buckets
            .iter()
            .find(|(_, count)| *count >= q * total)
            .map_or(f64::NAN, |(bound, _)| *bound)
    }

    /// `<= p50 / <= p99 ms (n observations)`.
    pub(crate) fn summary_ms(&self) -> String {
        let bound = |q: f64| {
            let b = self.quantile(q);
            if b.is_infinite() {
                "+Inf".to_owned()
            } else {
                format!("{:.1}", b * 1000.0)
            }
        };
        format!(
            "<= {} / <= {} ms ({} observed)",
            bound(0.5),
            bound(0.99),
            self.count()
        )
    }
}

/// SplitMix64: small, fast, good enough to pick test data.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}
