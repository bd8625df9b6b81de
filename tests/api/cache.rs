//! One suite for both cache backends: it runs on the in-process store, and on Redis when
//! `TEST_REDIS_URL` is set (`.ci/run` does both).

use std::collections::HashSet;
use std::time::Duration;

use memberhub::cache::{Cache, CacheError};

use crate::helpers::test_cache;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn values_can_be_set_read_and_deleted() {
    let cache = test_cache().await;

    assert_eq!(cache.get("greeting").await.unwrap(), None);
    cache.set("greeting", "你好", MINUTE).await.unwrap();
    assert_eq!(
        cache.get("greeting").await.unwrap().as_deref(),
        Some("你好")
    );
    cache.set("greeting", "再见", MINUTE).await.unwrap();
    assert_eq!(
        cache.get("greeting").await.unwrap().as_deref(),
        Some("再见")
    );

    assert!(cache.delete("greeting").await.unwrap());
    assert!(!cache.delete("greeting").await.unwrap());
    assert_eq!(cache.get("greeting").await.unwrap(), None);
}

#[tokio::test]
async fn values_expire_after_their_ttl() {
    let cache = test_cache().await;

    cache
        .set("short", "v", Duration::from_millis(100))
        .await
        .unwrap();
    cache.set("long", "v", MINUTE).await.unwrap();
    let ttl = cache.ttl("long").await.unwrap().unwrap();
    assert!(ttl > Duration::from_secs(50) && ttl <= MINUTE, "{ttl:?}");
    tokio::time::sleep(Duration::from_millis(250)).await;

    assert_eq!(cache.get("short").await.unwrap(), None);
    assert_eq!(cache.ttl("short").await.unwrap(), None);
    assert_eq!(cache.get("long").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn json_values_round_trip() {
    let cache = test_cache().await;
    let value = serde_json::json!({"tier": "黄金会员", "points": 1200});

    cache.set_json("card", &value, MINUTE).await.unwrap();

    let back: serde_json::Value = cache.get_json("card").await.unwrap().unwrap();
    assert_eq!(back, value);
    cache.set("broken", "{", MINUTE).await.unwrap();
    let err = cache
        .get_json::<serde_json::Value>("broken")
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Json { .. }));
}

#[tokio::test]
async fn set_nx_only_sets_an_absent_key_and_again_after_expiry() {
    let cache = test_cache().await;

    assert!(cache
        .set_nx("k", "first", Duration::from_millis(100))
        .await
        .unwrap());
    assert!(!cache.set_nx("k", "second", MINUTE).await.unwrap());
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("first"));

    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(cache.set_nx("k", "third", MINUTE).await.unwrap());
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("third"));
}

#[tokio::test]
async fn delete_if_eq_only_deletes_the_expected_value() {
    let cache = test_cache().await;
    cache.set("token", "stale", MINUTE).await.unwrap();

    assert!(!cache.delete_if_eq("token", "other").await.unwrap());
    assert_eq!(cache.get("token").await.unwrap().as_deref(), Some("stale"));
    assert!(cache.delete_if_eq("token", "stale").await.unwrap());
    assert_eq!(cache.get("token").await.unwrap(), None);
    assert!(!cache.delete_if_eq("token", "stale").await.unwrap());
}

#[tokio::test]
async fn the_counter_counts_every_concurrent_increment_once() {
    let cache = test_cache().await;
    let n = 200;

    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.incr("hits", MINUTE).await.unwrap() })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        assert!(
            seen.insert(t.await.unwrap()),
            "two increments saw the same value"
        );
    }

    assert_eq!(seen, (1..=n).collect::<HashSet<i64>>());
    assert_eq!(cache.get("hits").await.unwrap().as_deref(), Some("200"));
}

#[tokio::test]
async fn the_counter_window_starts_at_the_first_increment_and_then_resets() {
    let cache = test_cache().await;
    let window = Duration::from_millis(300);

    assert_eq!(cache.incr("login:ip", window).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A later increment must not push the window out, or a steady attacker is never reset.
    assert_eq!(cache.incr("login:ip", window).await.unwrap(), 2);
    let left = cache.ttl("login:ip").await.unwrap().unwrap();
    assert!(
        left <= Duration::from_millis(220),
        "window was extended: {left:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(cache.incr("login:ip", window).await.unwrap(), 1);
}

#[tokio::test]
async fn giving_back_a_count_keeps_the_window_and_never_goes_below_zero() {
    let cache = test_cache().await;
    assert_eq!(cache.decr("absent").await.unwrap(), 0);
    assert!(
        cache.get("absent").await.unwrap().is_none(),
        "decr created a key"
    );
    cache.incr("attempts", MINUTE).await.unwrap();
    cache.incr("attempts", MINUTE).await.unwrap();
    let before = cache.ttl("attempts").await.unwrap().unwrap();
    assert_eq!(cache.decr("attempts").await.unwrap(), 1);
    assert_eq!(cache.decr("attempts").await.unwrap(), 0);
    assert_eq!(cache.decr("attempts").await.unwrap(), 0);
    let after = cache.ttl("attempts").await.unwrap().unwrap();
    assert!(
        after <= before && after > Duration::from_secs(50),
        "{after:?}"
    );
    assert_eq!(cache.incr("attempts", MINUTE).await.unwrap(), 1);
}

#[tokio::test]
async fn incrementing_a_non_number_is_an_error_and_changes_nothing() {
    let cache = test_cache().await;
    cache.set("word", "abc", MINUTE).await.unwrap();

    let err = cache.incr("word", MINUTE).await.unwrap_err();

    assert!(matches!(err, CacheError::NotInteger { .. }), "{err:?}");
    assert_eq!(cache.get("word").await.unwrap().as_deref(), Some("abc"));
}

#[tokio::test]
async fn of_many_contenders_for_a_lock_exactly_one_owns_it() {
    let cache = test_cache().await;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.try_lock("token-refresh", MINUTE).await.unwrap() })
        })
        .collect();
    let mut owners = Vec::new();
    for t in tasks {
        if let Some(lock) = t.await.unwrap() {
            owners.push(lock);
        }
    }

    assert_eq!(owners.len(), 1);
    let owner = owners.pop().unwrap();
    assert!(cache
        .try_lock("token-refresh", MINUTE)
        .await
        .unwrap()
        .is_none());
    assert!(cache.unlock(owner).await.unwrap());
    let next = cache.try_lock("token-refresh", MINUTE).await.unwrap();
    assert!(next.is_some(), "a released lock can be taken again");
}

#[tokio::test]
async fn only_the_owner_can_release_a_lock() {
    let cache = test_cache().await;
    let first = cache
        .try_lock("job", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The first holder was too slow: its lock expired and a second holder took it.
    let second = cache.try_lock("job", MINUTE).await.unwrap().unwrap();
    assert_ne!(first.token(), second.token());

    let released = cache.unlock(first).await.unwrap();

    assert!(!released, "a stale holder released someone else's lock");
    assert!(cache.try_lock("job", MINUTE).await.unwrap().is_none());
    assert!(cache.unlock(second).await.unwrap());
}

#[tokio::test]
async fn lock_waits_for_the_holder_to_release() {
    let cache = test_cache().await;
    let held = cache.try_lock("wait", MINUTE).await.unwrap().unwrap();

    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .lock("wait", MINUTE, Duration::from_secs(5))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    assert!(cache.unlock(held).await.unwrap());

    assert!(waiter.await.unwrap().is_some());
    let gave_up = cache
        .lock("wait", MINUTE, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(gave_up.is_none(), "the waiter's lock is still held");
}

#[tokio::test]
async fn key_prefixes_keep_deployments_apart() {
    let a = test_cache().await;
    let b = test_cache().await;
    assert_ne!(a.prefix(), b.prefix());

    a.set("shared-name", "a", MINUTE).await.unwrap();

    assert_eq!(b.get("shared-name").await.unwrap(), None);
    assert!(b.try_lock("shared-lock", MINUTE).await.unwrap().is_some());
    assert!(a.try_lock("shared-lock", MINUTE).await.unwrap().is_some());
}

#[tokio::test]
async fn the_suite_runs_on_the_backend_the_environment_asks_for() {
    let cache: Cache = test_cache().await;
    let expected = if crate::helpers::test_redis_url().is_some() {
        "redis"
    } else {
        "in-process"
    };
    assert_eq!(cache.backend_name(), expected);
    cache.ping().await.unwrap();
}
