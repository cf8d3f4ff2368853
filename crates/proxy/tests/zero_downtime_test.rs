//! Zero downtime in process: steady keep-alive traffic through a real listener while the
//! service's target is switched five times, once to a target that never becomes healthy.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const WORKERS: usize = 4;
const MAX_PER_WORKER: usize = 20_000;
const MIN_TOTAL: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_while_switching_targets() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let names = ["v1", "v2", "v3", "v4", "v5"];
    let mut backends = Vec::new();
    for name in names {
        backends.push(backend(name, 200).await);
    }
    let never_healthy = backend("broken", 503).await;
    let deploy = |target: &str| {
        let mut a = args("app", &[target], service_options(), target_options());
        a.deployment_options.deploy_timeout = dhow_proxy::options::Nanos(Duration::from_secs(2));
        a
    };
    server.router.deploy(deploy(&backends[0])).await.unwrap();

    let url: http::Uri = format!("http://{}/", server.http_addr).parse().unwrap();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (client, url, stop, total, failures) = (
            client.clone(),
            url.clone(),
            stop.clone(),
            total.clone(),
            failures.clone(),
        );
        workers.push(tokio::spawn(async move {
            for _ in 0..MAX_PER_WORKER {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let req = http::Request::get(url.clone())
                    .header("host", "example.com")
                    .body(Empty::new())
                    .unwrap();
                match client.request(req).await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.into_body().collect().await;
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("error {e}")),
                }
                total.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    let wait_for = |n: usize| {
        let total = total.clone();
        async move {
            for _ in 0..2000 {
                if total.load(Ordering::SeqCst) >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut switches = 0;
    for (i, target) in backends.iter().enumerate().skip(1) {
        wait_for(total.load(Ordering::SeqCst) + 200).await;
        if i == 3 {
            let err = server
                .router
                .deploy(deploy(&never_healthy))
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "target failed to become healthy within configured timeout (2s)"
            );
            switches += 1;
            wait_for(total.load(Ordering::SeqCst) + 200).await;
        }
        server.router.deploy(deploy(target)).await.unwrap();
        switches += 1;
    }
    assert_eq!(switches, 5);
    wait_for(MIN_TOTAL.max(total.load(Ordering::SeqCst) + 200)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let total = total.load(Ordering::SeqCst);
    eprintln!("zero downtime: {total} requests, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total >= MIN_TOTAL, "only {total} requests");
    // The last target serves.
    let (status, body) = get(&server.router, "http://example.com/").await;
    assert_eq!((status, body.as_str()), (200, "v5"));
    server.shutdown().await;
}
