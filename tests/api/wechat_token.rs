//! The access token against the sandbox's token rules (wechat-api.md sections 2 and 13.5).

use std::time::Duration;

use memberhub::cache::Cache;
use memberhub::wechat::client::{ClientOptions, WechatClient};
use memberhub::wechat::sandbox::{self, Sandbox, SANDBOX_APPID, SANDBOX_SECRET};
use secrecy::SecretString;

use crate::helpers::{test_redis_settings, test_redis_url};

const STABLE: &str = "/cgi-bin/stable_token";
const PROBE: &str = "/cgi-bin/get_api_domain_ip";

struct World {
    sandbox: Sandbox,
    base_url: String,
    _server: actix_web::dev::ServerHandle,
}

fn world() -> World {
    let sandbox = Sandbox::default();
    let (base_url, server) = sandbox::serve(sandbox.clone()).unwrap();
    World {
        sandbox,
        base_url,
        _server: server,
    }
}

fn client(world: &World, cache: Cache, secret: &str) -> WechatClient {
    WechatClient::new(
        ClientOptions {
            base_url: world.base_url.clone(),
            appid: SANDBOX_APPID.into(),
            secret: SecretString::from(secret.to_string()),
            timeout: Duration::from_secs(5),
            retry_base: Duration::from_millis(10),
            busy_retries: 3,
        },
        cache,
    )
    .unwrap()
}

/// Two caches that share state like two instances do: separate Redis connections under one
/// prefix, or (without Redis) one in-process store.
async fn shared_caches() -> (Cache, Cache) {
    let settings = test_redis_settings();
    let a = Cache::connect(&settings).await.unwrap();
    let b = if test_redis_url().is_some() {
        Cache::connect(&settings).await.unwrap()
    } else {
        a.clone()
    };
    (a, b)
}

#[tokio::test]
async fn two_instances_starting_cold_share_one_token_fetch() {
    let world = world();
    let (cache_a, cache_b) = shared_caches().await;
    let a = client(&world, cache_a, SANDBOX_SECRET);
    let b = client(&world, cache_b, SANDBOX_SECRET);

    let calls: Vec<_> = (0..10)
        .map(|i| {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { c.access_token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for c in calls {
        tokens.push(c.await.unwrap());
    }

    assert_eq!(world.sandbox.calls(STABLE), 1);
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "instances used different tokens");
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!(world.sandbox.calls(STABLE), 1);
}

#[tokio::test]
async fn an_expired_token_costs_exactly_one_refresh_and_one_retry() {
    let world = world();
    let c = client(&world, crate::helpers::test_cache().await, SANDBOX_SECRET);
    c.ping().await.unwrap();
    let before = c.access_token().await.unwrap();

    world.sandbox.expire_tokens(SANDBOX_APPID);
    c.ping().await.unwrap();

    assert_eq!(world.sandbox.calls(STABLE), 2);
    assert_eq!(world.sandbox.calls(PROBE), 3);
    assert_ne!(c.access_token().await.unwrap(), before);
}

#[tokio::test]
async fn a_permanently_rejected_token_costs_two_attempts_then_an_error() {
    let world = world();
    let c = client(&world, crate::helpers::test_cache().await, SANDBOX_SECRET);
    world.sandbox.inject_fault(PROBE, 40001, None);

    let err = c.ping().await.unwrap_err();

    assert_eq!(err.code(), Some(40001));
    assert_eq!(world.sandbox.calls(PROBE), 2);
    assert_eq!(world.sandbox.calls(STABLE), 2);
}

#[tokio::test]
async fn a_token_dropped_by_another_instance_is_not_clobbered() {
    let world = world();
    let (cache_a, cache_b) = shared_caches().await;
    let a = client(&world, cache_a.clone(), SANDBOX_SECRET);
    let stale = a.access_token().await.unwrap();
    // Another instance already replaced the rejected token with a fresh one.
    cache_b
        .set(
            &format!("wechat:{SANDBOX_APPID}:access_token"),
            "fresh-from-b",
            Duration::from_secs(60),
        )
        .await
        .unwrap();

    let dropped = cache_a
        .delete_if_eq(&format!("wechat:{SANDBOX_APPID}:access_token"), &stale)
        .await
        .unwrap();

    assert!(!dropped);
    assert_eq!(a.access_token().await.unwrap(), "fresh-from-b");
}

#[tokio::test]
async fn busy_answers_are_retried_with_backoff() {
    let world = world();
    let c = client(&world, crate::helpers::test_cache().await, SANDBOX_SECRET);
    world.sandbox.inject_fault(PROBE, -1, Some(2));

    c.ping().await.unwrap();

    assert_eq!(world.sandbox.calls(PROBE), 3);

    world.sandbox.inject_fault(PROBE, -1, Some(5));
    let err = c.ping().await.unwrap_err();
    assert_eq!(err.code(), Some(-1));
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn a_wrong_secret_is_reported_once_and_not_retried() {
    let world = world();
    let c = client(&world, crate::helpers::test_cache().await, "not-the-secret");

    let err = c.ping().await.unwrap_err();

    assert_eq!(err.code(), Some(40001));
    assert_eq!(world.sandbox.calls(STABLE), 1);
    assert_eq!(world.sandbox.calls(PROBE), 0);
}

#[tokio::test]
async fn stable_tokens_follow_wechats_rules() {
    let world = world();
    let http = reqwest::Client::new();
    let fetch = |force: bool| {
        let http = http.clone();
        let url = format!("{}{STABLE}", world.base_url);
        async move {
            http.post(url)
                .json(&serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": SANDBOX_APPID,
                    "secret": SANDBOX_SECRET,
                    "force_refresh": force,
                }))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };

    let first = fetch(false).await;
    let again = fetch(false).await;
    assert_eq!(
        first["access_token"], again["access_token"],
        "normal mode returns the same token"
    );
    assert!(again["expires_in"].as_i64().unwrap() <= 7200);

    let forced = fetch(true).await;
    assert_ne!(forced["access_token"], first["access_token"]);
    let old = first["access_token"].as_str().unwrap();
    assert_eq!(world.sandbox.check_token(Some(old)).unwrap_err().0, 40001);
    // Within 30 s of a force, another force hands back the same token.
    let forced_again = fetch(true).await;
    assert_eq!(forced_again["access_token"], forced["access_token"]);

    // A form body is refused as WeChat does.
    let form: serde_json::Value = http
        .post(format!("{}{STABLE}", world.base_url))
        .form(&[("grant_type", "client_credential")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["errcode"], 47001);
}
