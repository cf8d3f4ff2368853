//! Prometheus metrics with kamal-proxy's names: request counter, duration histogram and in-flight
//! gauge, labelled by service, normalised method and status.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; 11],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, String), u64>>,
    durations: Mutex<BTreeMap<(String, String, String), Histogram>>,
    in_flight: Mutex<BTreeMap<String, i64>>,
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
    pub fn in_flight(&self, service: &str, delta: i64) {
        if let Ok(mut map) = self.in_flight.lock() {
            *map.entry(service.to_string()).or_default() += delta;
        }
    }

    pub fn observe(&self, service: &str, method: &str, status: u16, duration: Duration) {
        let key = (
            service.to_string(),
            normalize_method(method).to_string(),
            status.to_string(),
        );
        if let Ok(mut map) = self.requests.lock() {
            *map.entry(key.clone()).or_default() += 1;
        }
        if let Ok(mut map) = self.durations.lock() {
            let h = map.entry(key).or_default();
            let secs = duration.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP kamal_proxy_http_in_flight_requests Number of HTTP requests currently in flight\n# TYPE kamal_proxy_http_in_flight_requests gauge\n");
        if let Ok(map) = self.in_flight.lock() {
            for (service, value) in map.iter() {
                let _ = writeln!(
                    out,
                    "kamal_proxy_http_in_flight_requests{{service=\"{}\"}} {value}",
                    escape(service)
                );
            }
        }
        out.push_str("# HELP kamal_proxy_http_request_duration_seconds Duration of HTTP requests\n# TYPE kamal_proxy_http_request_duration_seconds histogram\n");
        if let Ok(map) = self.durations.lock() {
            for ((service, method, status), h) in map.iter() {
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
        }
        out.push_str("# HELP kamal_proxy_http_requests_total Total number of HTTP requests\n# TYPE kamal_proxy_http_requests_total counter\n");
        if let Ok(map) = self.requests.lock() {
            for ((service, method, status), count) in map.iter() {
                let _ = writeln!(
                    out,
                    "kamal_proxy_http_requests_total{{method=\"{method}\",service=\"{}\",status=\"{status}\"}} {count}",
                    escape(service)
                );
            }
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
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"OTHER\",service=\"app\",status=\"200\",le=\"0.01\"} 1"));
        assert!(text.contains("kamal_proxy_http_in_flight_requests{service=\"app\"} 1"));
    }
}
