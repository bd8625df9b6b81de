use std::time::Duration;

use memberhub::cache::Cache;
use serde_json::Value;

use crate::helpers::{
    eventually, spawn_app, spawn_app_around, test_cache, test_redis_url, FlakyProxy, TestDb,
};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;

    let res = app.get("/healthz").await;

    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_is_ready_when_the_database_and_the_cache_answer() {
    let app = spawn_app().await;

    let res = app.get("/readyz").await;

    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["cache"], "ok");
}

#[tokio::test]
async fn readyz_names_the_database_when_it_does_not_answer() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.close_by_ref().await.unwrap();
    let app = spawn_app_around(conn, test_cache().await).await;

    let res = app.get("/readyz").await;

    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["failed"], serde_json::json!(["database"]));
    assert_eq!(body["error"]["checks"]["cache"], "ok");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("数据库"));
}

/// Redis goes away and comes back: readiness follows it without a restart.
#[tokio::test]
async fn readyz_names_the_cache_while_redis_is_down_and_recovers_without_a_restart() {
    let Some(redis_url) = test_redis_url() else {
        eprintln!("needs TEST_REDIS_URL (the PostgreSQL + Redis run of .ci/run has it)");
        return;
    };
    let target = redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .expect("TEST_REDIS_URL must be redis://127.0.0.1:PORT");
    let proxy = FlakyProxy::start(target).await;
    let cache = Cache::redis(
        &format!("redis://{}", proxy.addr),
        "test:flaky:",
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    let db = TestDb::new().await;
    let app = spawn_app_around(db.connect().await, cache).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.cut();
    let went_down = eventually(Duration::from_secs(10), || async {
        app.get("/readyz").await.status() == 503
    })
    .await;
    assert!(went_down, "readyz stayed ready while Redis was unreachable");
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let last: Value = res.json().await.unwrap();
    assert_eq!(last["error"]["failed"], serde_json::json!(["cache"]));
    assert_eq!(last["error"]["checks"]["database"], "ok");
    assert!(last["error"]["message"].as_str().unwrap().contains("缓存"));

    proxy.restore();
    let came_back = eventually(Duration::from_secs(15), || async {
        app.get("/readyz").await.status() == 200
    })
    .await;
    assert!(came_back, "readyz did not recover after Redis came back");
    drop(db);
}
