//! Prometheus metrics in kamal-proxy's names: in-flight requests per service, request count and
//! duration histogram per service, method and status.
//!
//! Recording a request takes one uncontended lock and no allocation once a service/method/status
//! has been seen: each thread records into its own shard (threads serving connections never wait
//! for each other), every series of a service lives under that service's entry, keyed by the
//! method (a static string) and the status code. The exposition sums the shards and sorts the
//! series by their label text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rustc_hash::FxHashMap as HashMap;

use crate::shard;

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; 11],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

#[derive(Debug, Default)]
struct ServiceSeries {
    in_flight: Option<i64>,
    /// (normalised method, status) → request count and duration histogram.
    requests: HashMap<(&'static str, u16), Histogram>,
}

type Shard = HashMap<String, ServiceSeries>;

#[derive(Debug)]
pub struct Metrics {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            shards: shard::new(),
        }
    }
}

pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE; anything else is OTHER.
pub fn normalize_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with_service<R>(&self, service: &str, f: impl FnOnce(&mut ServiceSeries) -> R) -> Option<R> {
        let mut map = self.shards[shard::index()].lock().ok()?;
        let series = match map.get_mut(service) {
            Some(series) => series,
            None => map.entry(service.to_string()).or_default(),
        };
        Some(f(series))
    }

    pub fn in_flight(&self, service: &str, delta: i64) {
        self.with_service(service, |s| *s.in_flight.get_or_insert(0) += delta);
    }

    pub fn observe(&self, service: &str, method: &str, status: u16, duration: Duration) {
        let method = normalize_method(method);
        let secs = duration.as_secs_f64();
        self.with_service(service, |s| {
            let h = s.requests.entry((method, status)).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        // The shards summed (one lock at a time), sorted by label text as the exposition always
        // was. A request counted in flight on one thread may finish on another: the sum is right.
        let mut in_flight: BTreeMap<String, i64> = BTreeMap::new();
        let mut summed: BTreeMap<(String, &'static str, String), Histogram> = BTreeMap::new();
        for shard in &self.shards {
            let Ok(map) = shard.lock() else { continue };
            for (service, s) in map.iter() {
                if let Some(value) = s.in_flight {
                    *in_flight.entry(service.clone()).or_default() += value;
                }
                for ((method, status), h) in &s.requests {
                    summed
                        .entry((service.clone(), *method, status.to_string()))
                        .or_default()
                        .add(h);
                }
            }
        }
        let series: Vec<_> = summed.into_iter().collect();
        let mut out = String::new();
        out.push_str("# HELP kamal_proxy_http_in_flight_requests Number of HTTP requests currently in flight\n# TYPE kamal_proxy_http_in_flight_requests gauge\n");
        for (service, value) in &in_flight {
            let _ = writeln!(
                out,
                "kamal_proxy_http_in_flight_requests{{service=\"{}\"}} {value}",
                escape(service)
            );
        }
        out.push_str("# HELP kamal_proxy_http_request_duration_seconds Duration of HTTP requests\n# TYPE kamal_proxy_http_request_duration_seconds histogram\n");
        for ((service, method, status), h) in &series {
            let labels = format!(
                "method=\"{method}\",service=\"{}\",status=\"{status}\"",
                escape(service)
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kamal_proxy_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "kamal_proxy_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "kamal_proxy_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "kamal_proxy_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str("# HELP kamal_proxy_http_requests_total Total number of HTTP requests\n# TYPE kamal_proxy_http_requests_total counter\n");
        for ((service, method, status), h) in &series {
            let _ = writeln!(
                out,
                "kamal_proxy_http_requests_total{{method=\"{method}\",service=\"{}\",status=\"{status}\"}} {}",
                escape(service),
                h.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_test_method_normalization() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
        ] {
            assert_eq!(normalize_method(m), m);
        }
        assert_eq!(normalize_method("PROPFIND"), "OTHER");
        assert_eq!(normalize_method("get"), "OTHER");
    }

    #[test]
    fn renders_counter_and_histogram() {
        let m = Metrics::default();
        m.observe("app", "BREW", 200, Duration::from_millis(7));
        m.in_flight("app", 1);
        let text = m.render();
        assert!(text.contains(
            "kamal_proxy_http_requests_total{method=\"OTHER\",service=\"app\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "kamal_proxy_http_requests_total{method=\"OTHER\",service=\"app\",status=\"200\"} 1"
        ));
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"OTHER\",service=\"app\",status=\"200\",le=\"0.01\"} 1"));
        assert!(text.contains("kamal_proxy_http_in_flight_requests{service=\"app\"} 1"));
    }

    #[test]
    fn threads_record_into_their_own_shards_and_the_exposition_sums_them() {
        let m = std::sync::Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = std::sync::Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        m.in_flight("app", 1);
                        m.observe("app", "GET", 200, Duration::from_millis(20));
                    }
                    m.in_flight("app", -100);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // In flight +1 here, -1 on another thread: the sum is what counts.
        m.in_flight("app", -600);
        let text = m.render();
        assert!(
            text.contains(
                "kamal_proxy_http_requests_total{method=\"GET\",service=\"app\",status=\"200\"} 1000\n"
            ),
            "{text}"
        );
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"GET\",service=\"app\",status=\"200\",le=\"0.01\"} 0\n"));
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"GET\",service=\"app\",status=\"200\",le=\"0.025\"} 1000\n"));
        assert!(
            text.contains("kamal_proxy_http_in_flight_requests{service=\"app\"} 0\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("kamal_proxy_http_requests_total{").count(),
            1,
            "one series, not one per shard: {text}"
        );
    }
}
