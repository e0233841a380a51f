//! Descriptors and tasks after a thousand subscriptions and refusals: none leak. Alone in its
//! test binary, because descriptors are counted for the whole process (other tests' sockets
//! would be counted too).

use std::time::Duration;

use firehose_client::Client;
use firehose_testkit as common;

use common::clients::collector;
use common::get;
use common::run::{spec, start, wait_sessions};

/// Descriptors open in this process, leaving out the archive database's files: the history
/// pool opens up to `POOL_SIZE` connections on demand and keeps them (bounded by design; when
/// they open depends on timing), which is not what this test is about.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path()).map_or(true, |t| !t.to_string_lossy().contains(".sqlite3"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connects_and_refusals_leak_no_fds_or_tasks() {
    let run = start(spec(200), 100, |_| {}).await;
    let rt = tokio::runtime::Handle::current().metrics();
    // Warm up with the same connects (lazy statics, the first connections' buffers).
    connect_and_refuse(&run).await;
    wait_sessions(&run.d, 0).await;
    settle().await;
    let (fds, tasks) = (open_fds(), rt.num_alive_tasks());
    connect_and_refuse(&run).await;
    wait_sessions(&run.d, 0).await;
    // Closing handshakes and task exits settle.
    let mut settled = false;
    for _ in 0..300 {
        if open_fds() <= fds + 2 && rt.num_alive_tasks() <= tasks + 2 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = get(&run.url, "/metrics").await;
    assert!(
        metrics.contains("firehose_distributor_auth_failures_total 500\n"),
        "500 refused as bad signatures"
    );
    assert!(
        settled,
        "fds {} -> {}, tasks {} -> {}",
        fds,
        open_fds(),
        tasks,
        rt.num_alive_tasks()
    );
}

/// A thousand subscriptions with 200 keys: three of four subscribe and leave, one of four is
/// refused for a bad signature.
async fn connect_and_refuse(run: &common::run::Running) {
    for i in 0..1000u32 {
        let seed = 41 + (i % 200) as u8;
        if i % 4 == 3 {
            // A refused one: a bad signature gets 401 and leaves nothing behind.
            let cfg = collector(seed, &run.d, &run.url);
            let url = cfg
                .signed_url()
                .replace("%22sig%22%3A%22", "%22sig%22%3A%2200");
            assert!(tokio_tungstenite::connect_async(url).await.is_err());
        } else {
            let cfg = collector(seed, &run.d, &run.url);
            let sub = Client::connect(&cfg).await.unwrap();
            drop(sub);
        }
    }
}

/// Waits until the process's descriptor count has not changed for 300 ms (closing handshakes
/// and task exits), at most 10 s.
async fn settle() {
    let mut last = (open_fds(), std::time::Instant::now());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while last.1.elapsed() < Duration::from_millis(300) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = open_fds();
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
    }
}
