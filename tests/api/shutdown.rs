use std::time::Duration;

use memberhub::cache::Cache;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{eventually, slow_redis, spawn_app_around, TestDb};

/// A request being handled when shutdown starts is answered; new connections are refused
/// meanwhile; then the server stops.
#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    // /readyz waits for the cache's PING, which this Redis answers only after a while.
    let redis = slow_redis(Duration::from_millis(1_200)).await;
    let cache = Cache::redis(
        &format!("redis://{redis}"),
        "test:slow:",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let db = TestDb::new().await;
    let app = spawn_app_around(db.connect().await, cache).await;
    let mut conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let handle = app.handle.clone();
    let stopping = tokio::spawn(async move { handle.stop(true).await });
    let port = app.port;
    let refused = eventually(Duration::from_secs(5), || async move {
        TcpStream::connect(("127.0.0.1", port)).await.is_err()
    })
    .await;
    assert!(
        refused,
        "new connections were still accepted during shutdown"
    );
    assert!(
        !stopping.is_finished(),
        "the server stopped with a request in flight"
    );

    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""status":"ready""#), "{response}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server did not stop after the last request")
        .unwrap();
}
