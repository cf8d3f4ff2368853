//! The routing micro-benchmarks (kamal-proxy's `service_map_test.go` benchmarks, run by
//! `scripts/bench-proxy-routing`): per case, the time the router takes to pick a service for a
//! request (host from the request, then the table lookup), beside one hash-map lookup of the same
//! host measured in the same run, the least any host router does. Every request is first checked
//! to route to the service the case expects; a wrong route exits 1 before anything is timed.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark program: it prints its figures; bad arguments or fixtures panic"
)]

#[path = "../tests/routing_cases/mod.rs"]
mod routing_cases;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Median nanoseconds per call of `op` over `rounds` rounds of about `round` each.
fn ns_per_op(rounds: usize, round: Duration, mut op: impl FnMut(usize)) -> f64 {
    // Calibrate: how many calls fill a round.
    let mut calls: u32 = 1_000;
    loop {
        let started = Instant::now();
        for i in 0..calls as usize {
            op(i);
        }
        let took = started.elapsed();
        if took >= round / 10 {
            let scaled = round.as_nanos() * u128::from(calls) / took.as_nanos().max(1);
            calls = u32::try_from(scaled).unwrap_or(u32::MAX).max(1);
            break;
        }
        calls = calls.saturating_mul(4);
    }
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            for i in 0..calls as usize {
                op(i);
            }
            started.elapsed().as_secs_f64() * 1e9 / f64::from(calls)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let mut rounds = 7usize;
    let mut millis = 200u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            "--millis" => millis = args.next().unwrap().parse().unwrap(),
            other => {
                eprintln!("usage: bench-routing [--rounds N] [--millis MS]; unknown {other}");
                std::process::exit(2);
            }
        }
    }
    let round = Duration::from_millis(millis);
    let cases = routing_cases::cases();
    for case in &cases {
        for (req, expected) in &case.requests {
            let got = routing_cases::route(&case.map, req);
            if got != expected.as_deref() {
                eprintln!(
                    "error: {}: {} routed to {got:?}, expected {expected:?}",
                    case.name,
                    req.uri()
                );
                std::process::exit(1);
            }
        }
    }

    println!(
        "routing micro-benchmarks: median of {rounds} rounds of ~{millis} ms, nanoseconds per request"
    );
    println!(
        "{:<24} {:>9} {:>10} {:>9}",
        "case", "requests", "router", "floor"
    );
    for case in &cases {
        let n = case.requests.len();
        let router = ns_per_op(rounds, round, |i| {
            let (req, _) = &case.requests[i % n];
            black_box(routing_cases::route(&case.map, black_box(req)));
        });
        let keys = routing_cases::host_keys(case);
        let hosts: Vec<String> = case
            .requests
            .iter()
            .map(|(req, _)| dhow_proxy::service::request_host(req).to_string())
            .collect();
        let floor = ns_per_op(rounds, round, |i| {
            black_box(keys.get(black_box(hosts[i % n].as_str())));
        });
        println!(
            "{:<24} {:>9} {:>10.1} {:>9.1}   {:.2}x the bare host lookup",
            case.name,
            n,
            router,
            floor,
            router / floor
        );
    }
}
