//! dhow-proxy's own: `kamal-proxy run` as a process, serving on several threads (each with its
//! own listener on the shared port) and writing its access log from all of them at once.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{backend, client_ok};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends SIGTERM to the proxy and expects it to exit 0 (a graceful shutdown).
fn terminate(proxy: &mut std::process::Child) {
    assert!(
        Command::new("kill")
            .args(["-TERM", &proxy.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(proxy.wait().unwrap().success());
}

/// `connections` keep-alive connections sending `per_connection` requests each; every tenth
/// carries an `X-Big` header of `big` bytes. Returns the statuses.
async fn load(port: u16, connections: usize, per_connection: usize, big: &str) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let big = big.to_owned();
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut statuses = Vec::new();
            for i in 0..per_connection {
                let mut req = http::Request::get("/").header("host", "example.com");
                if i % 10 == 0 {
                    req = req.header("x-big", big.as_str());
                }
                let response = sender
                    .send_request(req.body(Empty::<Bytes>::new()).unwrap())
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
                response.into_body().collect().await.unwrap();
            }
            statuses
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_run_logs_whole_lines_from_every_serving_thread() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kamal-proxy.sock");
    let http_port = free_port();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_kamal-proxy"))
        .args([
            "run",
            &format!("--http-port={http_port}"),
            &format!("--https-port={}", free_port()),
        ])
        .env("HOME", dir.path())
        .env("KAMAL_PROXY_SOCKET", &socket)
        // More serving threads than this machine may have CPUs: they must share the log.
        .env("TOKIO_WORKER_THREADS", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proxy.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let target = backend("ok", 200).await;
    client_ok(
        &socket,
        &[
            "deploy",
            "app",
            &format!("--target={target}"),
            "--log-request-header=X-Big",
            "--health-check-interval=50ms",
        ],
    )
    .await;

    // Lines longer than a pipe writes in one piece (the big header) and short ones, from
    // four threads at once.
    let big = "b".repeat(6000);
    let statuses = load(http_port, 16, 100, &big).await;
    assert_eq!(statuses.len(), 1600);
    assert!(statuses.iter().all(|s| *s == 200));

    terminate(&mut proxy);
    let lines = reader.join().unwrap();

    let mut requests = 0;
    let mut with_big = 0;
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one whole JSON line ({e}): {line:.200}"));
        if value["msg"] == "Request" {
            requests += 1;
            match value["req_x_big"].as_str().map(str::len) {
                Some(6000) => with_big += 1,
                Some(0) => {}
                other => panic!("req_x_big of {other:?} bytes: {line:.200}"),
            }
        }
    }
    assert_eq!((requests, with_big), (1600, 160), "{} lines", lines.len());
}

/// Starts `kamal-proxy run` with `args` and `env`, waits for its `Server started` line, and
/// returns that line's `http3` field and whether the HTTPS port's number was taken over UDP.
fn run_and_probe_http3(args: &[&str], env: &[(&str, &str)]) -> (serde_json::Value, bool) {
    let dir = tempfile::tempdir().unwrap();
    let https_port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kamal-proxy"));
    command
        .args([
            "run",
            &format!("--http-port={}", free_port()),
            &format!("--https-port={https_port}"),
        ])
        .args(args)
        .env("HOME", dir.path())
        .env("KAMAL_PROXY_SOCKET", dir.path().join("kamal-proxy.sock"))
        .env_remove("KAMAL_PROXY_HTTP3")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut proxy = command.spawn().unwrap();
    let mut lines = BufReader::new(proxy.stdout.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map(Result::unwrap)
        .map(|line| serde_json::from_str::<serde_json::Value>(&line).unwrap())
        .find(|v| v["msg"] == "Server started")
        .expect("a Server started line");
    let udp_taken = std::net::UdpSocket::bind(("0.0.0.0", https_port)).is_err();
    terminate(&mut proxy);
    (started["http3"].clone(), udp_taken)
}

// `run --http3` serves HTTP/3 on the HTTPS port's number over UDP; so does
// `KAMAL_PROXY_HTTP3=true` (dhow-proxy's addition: Kamal's `proxy.run` cannot add flags to `run`,
// but its `options` can set an environment variable); without either no UDP socket is bound.
#[test]
fn run_serves_http3_by_flag_or_environment() {
    assert_eq!(run_and_probe_http3(&[], &[]), (false.into(), false));
    assert_eq!(run_and_probe_http3(&["--http3"], &[]), (true.into(), true));
    assert_eq!(
        run_and_probe_http3(&[], &[("KAMAL_PROXY_HTTP3", "true")]),
        (true.into(), true)
    );
    assert_eq!(
        run_and_probe_http3(&["--http3=false"], &[("KAMAL_PROXY_HTTP3", "true")]),
        (false.into(), false)
    );
}
