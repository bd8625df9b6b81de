//! Rewards, redemption and vouchers: stock and per-member limits under real concurrency,
//! idempotent redemption, refusals that change nothing, cancellation that returns the points,
//! and verification (核销) at the desk, once, in the right store.

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    assert_ledger_consistent, chain, create_staff, create_store, member_joined, spawn_app,
    staff_login_bearer, Chain, MemberClient, Reply, TestApp,
};

/// A member claimed into the chain's store and holding `points`, credited by the admin in two
/// lots so that a redemption may draw on both.
async fn member_with_points(
    app: &TestApp,
    chain: &Chain,
    n: u32,
    points: i64,
) -> (MemberClient, i64) {
    let (m, card) = member_joined(app, &format!("openid-rewards-{n}"), &format!("139{n:08}")).await;
    let member_id = card["member_id"].as_i64().unwrap();
    chain.claim(app, member_id).await;
    let first = points / 2;
    for delta in [first, points - first].into_iter().filter(|d| *d > 0) {
        let r = chain
            .admin
            .post_keyed(
                &format!("/api/v1/staff/members/{member_id}/points/adjust"),
                &uuid::Uuid::new_v4().to_string(),
                json!({"delta": delta, "reason": "开业活动赠送"}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    assert_eq!(balance(&m).await, points);
    (m, member_id)
}

async fn balance(m: &MemberClient) -> i64 {
    let r = m.get("/api/v1/member/me").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["points_balance"].as_i64().unwrap()
}

async fn new_reward(chain: &Chain, body: Value) -> Value {
    let r = chain.admin.post("/api/v1/staff/rewards", body).await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body
}

async fn staff_reward(chain: &Chain, id: i64) -> Value {
    let r = chain.admin.get("/api/v1/staff/rewards").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .cloned()
        .expect("reward not listed")
}

async fn redeem(m: &MemberClient, key: &str, reward_id: i64) -> Reply {
    m.post_keyed(
        "/api/v1/member/redemptions",
        key,
        json!({"reward_id": reward_id}),
    )
    .await
}

async fn vouchers_of_reward(app: &TestApp, reward_id: i64) -> u64 {
    entity::voucher::Entity::find()
        .filter(entity::voucher::Column::RewardId.eq(reward_id))
        .count(&app.state.db)
        .await
        .unwrap()
}

fn offered(catalogue: &Reply, reward_id: i64) -> Option<Value> {
    catalogue.body["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == reward_id)
        .cloned()
}

#[tokio::test]
async fn fifty_members_racing_for_ten_units_get_exactly_ten_vouchers() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let reward = new_reward(
        &chain,
        json!({"name": "补水护理", "kind": "service", "points_price": 300, "stock": 10}),
    )
    .await;
    let reward_id = reward["id"].as_i64().unwrap();
    let mut members = Vec::new();
    for n in 0..50 {
        members.push(member_with_points(&app, &chain, n, 1000).await);
    }

    let replies = join_all(
        members
            .iter()
            .enumerate()
            .map(|(i, (m, _))| async move { redeem(m, &format!("race-{i}"), reward_id).await }),
    )
    .await;

    let won: Vec<usize> = (0..50).filter(|&i| replies[i].status == 201).collect();
    assert_eq!(won.len(), 10, "{replies:?}");
    for (i, r) in replies.iter().enumerate() {
        if r.status == 201 {
            assert_eq!(r.body["points_balance"], 700, "{r:?}");
            assert_eq!(r.body["voucher"]["status"], "unused");
        } else {
            assert_eq!((r.status, r.code()), (409, "sold_out"), "member {i}: {r:?}");
        }
    }
    assert_eq!(vouchers_of_reward(&app, reward_id).await, 10);
    assert_eq!(staff_reward(&chain, reward_id).await["stock_left"], 0);
    for (i, (m, _)) in members.iter().enumerate() {
        let expected = if won.contains(&i) { 700 } else { 1000 };
        assert_eq!(balance(m).await, expected, "member {i}");
    }
    // Latecomers see it as sold out before trying.
    let catalogue = members[0].0.get("/api/v1/member/rewards").await;
    let offer = offered(&catalogue, reward_id).unwrap();
    assert_eq!(offer["stock_left"], 0);
    assert_eq!(offer["eligible"], false);
    assert_eq!(offer["ineligible_reason"], "sold_out");
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn one_member_racing_themself_gets_no_more_than_the_limit() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let reward = new_reward(
        &chain,
        json!({"name": "面膜礼盒", "kind": "product", "points_price": 100, "stock": 100, "per_member_limit": 2}),
    )
    .await;
    let reward_id = reward["id"].as_i64().unwrap();
    let (m, _) = member_with_points(&app, &chain, 1, 5000).await;

    let replies = join_all((0..10).map(|i| {
        let m = m.clone();
        async move { redeem(&m, &format!("mine-{i}"), reward_id).await }
    }))
    .await;

    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        2,
        "{replies:?}"
    );
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "limit_reached"), "{r:?}");
    }
    assert_eq!(vouchers_of_reward(&app, reward_id).await, 2);
    assert_eq!(balance(&m).await, 4800);
    assert_eq!(staff_reward(&chain, reward_id).await["stock_left"], 98);
    let catalogue = m.get("/api/v1/member/rewards").await;
    let offer = offered(&catalogue, reward_id).unwrap();
    assert_eq!(offer["redeemed"], 2);
    assert_eq!(offer["ineligible_reason"], "limit_reached");
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn a_retried_redemption_replays_and_deducts_once() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let a = new_reward(
        &chain,
        json!({"name": "小气泡", "kind": "service", "points_price": 200, "stock": 5}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let b = new_reward(
        &chain,
        json!({"name": "洁面乳", "kind": "product", "points_price": 100, "stock": 5}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let (m, _) = member_with_points(&app, &chain, 2, 1000).await;

    let first = redeem(&m, "retry-1", a).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.body["points_balance"], 800);
    let again = redeem(&m, "retry-1", a).await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.body["voucher"]["id"], first.body["voucher"]["id"]);
    assert_eq!(again.body["voucher"]["code"], first.body["voucher"]["code"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(balance(&m).await, 800);
    assert_eq!(vouchers_of_reward(&app, a).await, 1);
    assert_eq!(staff_reward(&chain, a).await["stock_left"], 4);

    let reused = redeem(&m, "retry-1", b).await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "idempotency_key_reused"),
        "{reused:?}"
    );
    let keyless = m
        .post("/api/v1/member/redemptions", json!({"reward_id": b}))
        .await;
    assert_eq!(
        (keyless.status, keyless.code()),
        (400, "validation_failed"),
        "{keyless:?}"
    );
    assert_eq!(keyless.body["error"]["field"], "Idempotency-Key");
    assert_eq!(balance(&m).await, 800);
    assert_eq!(vouchers_of_reward(&app, b).await, 0);

    // My redemptions, newest first, page by page.
    assert_eq!(redeem(&m, "retry-2", b).await.status, 201);
    assert_eq!(redeem(&m, "retry-3", b).await.status, 201);
    let page = m.get("/api/v1/member/redemptions?limit=2").await;
    assert_eq!(page.status, 200, "{page:?}");
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["title"], "洁面乳");
    assert_eq!(items[0]["points_cost"], 100);
    let cursor = page.body["next_cursor"].as_i64().expect("a next page");
    let rest = m
        .get(&format!(
            "/api/v1/member/redemptions?limit=2&cursor={cursor}"
        ))
        .await;
    let rest = rest.body["items"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], first.body["voucher"]["id"]);
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn refused_redemptions_change_nothing() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let pricey = new_reward(
        &chain,
        json!({"name": "热玛吉体验", "kind": "service", "points_price": 1000, "stock": 3}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let gold = new_reward(
        &chain,
        json!({"name": "黄金专享", "kind": "service", "points_price": 100, "stock": 3, "min_tier_code": "gold"}),
    )
    .await["id"]
    .as_i64()
    .unwrap();
    let tomorrow = Utc::now() + Duration::days(1);
    let later = new_reward(
        &chain,
        json!({"name": "新年礼", "kind": "product", "points_price": 100, "stock": 3, "starts_at": tomorrow}),
    )
    .await["id"]
    .as_i64()
    .unwrap();
    let over = new_reward(
        &chain,
        json!({"name": "旧活动", "kind": "product", "points_price": 100, "stock": 3,
               "starts_at": Utc::now() - Duration::days(10), "ends_at": Utc::now() - Duration::days(1)}),
    )
    .await["id"]
    .as_i64()
    .unwrap();
    let cash = new_reward(
        &chain,
        json!({"name": "200元代金券", "kind": "cash_voucher", "points_price": 400, "stock": 3, "face_value_fen": 20000}),
    )
    .await["id"]
    .as_i64()
    .unwrap();
    let (m, _) = member_with_points(&app, &chain, 3, 500).await;

    let catalogue = m.get("/api/v1/member/rewards").await;
    assert_eq!(catalogue.status, 200, "{catalogue:?}");
    assert_eq!(catalogue.body["points_balance"], 500);
    assert_eq!(
        offered(&catalogue, pricey).unwrap()["ineligible_reason"],
        "insufficient_points"
    );
    assert_eq!(
        offered(&catalogue, gold).unwrap()["ineligible_reason"],
        "tier_too_low"
    );
    assert_eq!(offered(&catalogue, gold).unwrap()["min_tier_code"], "gold");
    let ok = offered(&catalogue, cash).unwrap();
    assert_eq!(
        (ok["eligible"].clone(), ok["ineligible_reason"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(ok["face_value_fen"], 20000);
    assert!(offered(&catalogue, later).is_none(), "not started yet");
    assert!(offered(&catalogue, over).is_none(), "already over");

    for (key, reward, code) in [
        ("no-1", pricey, "insufficient_points"),
        ("no-2", gold, "tier_too_low"),
        ("no-3", later, "reward_unavailable"),
        ("no-4", over, "reward_unavailable"),
    ] {
        let r = redeem(&m, key, reward).await;
        assert_eq!((r.status, r.code()), (409, code), "{r:?}");
        assert_eq!(staff_reward(&chain, reward).await["stock_left"], 3);
        assert_eq!(vouchers_of_reward(&app, reward).await, 0);
    }
    let unknown = redeem(&m, "no-5", 999_999).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(balance(&m).await, 500);

    // Switched off by the admin: gone from the catalogue and refused.
    let r = chain
        .admin
        .patch(
            &format!("/api/v1/staff/rewards/{cash}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(offered(&m.get("/api/v1/member/rewards").await, cash).is_none());
    let r = redeem(&m, "no-6", cash).await;
    assert_eq!((r.status, r.code()), (409, "reward_unavailable"), "{r:?}");
    assert_eq!(balance(&m).await, 500);

    // A refused attempt stores nothing: the same key works once the reason is gone.
    let r = chain
        .admin
        .patch(
            &format!("/api/v1/staff/rewards/{cash}"),
            json!({"active": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = redeem(&m, "no-6", cash).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["voucher"]["kind"], "cash_voucher");
    assert_eq!(r.body["points_balance"], 100);
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn someone_who_has_not_joined_cannot_redeem() {
    let app = spawn_app().await;
    let m = crate::helpers::member_login(&app, "openid-rewards-visitor").await;
    let r = m.get("/api/v1/member/rewards").await;
    assert_eq!((r.status, r.code()), (404, "not_member"), "{r:?}");
    let r = redeem(&m, "k", 1).await;
    assert_eq!((r.status, r.code()), (404, "not_member"), "{r:?}");
    let r = m.get("/api/v1/member/vouchers").await;
    assert_eq!((r.status, r.code()), (404, "not_member"), "{r:?}");
}

#[tokio::test]
async fn cancelling_an_unused_voucher_gives_the_points_and_the_stock_back() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let reward_id = new_reward(
        &chain,
        json!({"name": "眼部护理", "kind": "service", "points_price": 700, "stock": 2}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let (m, _) = member_with_points(&app, &chain, 4, 1000).await;
    let (other, _) = member_with_points(&app, &chain, 5, 1000).await;

    let r = redeem(&m, "cancel-1", reward_id).await;
    assert_eq!(r.status, 201, "{r:?}");
    let voucher_id = r.body["voucher"]["id"].as_i64().unwrap();
    // 700 points: all of one lot and part of the other.
    assert_eq!(balance(&m).await, 300);
    assert_eq!(staff_reward(&chain, reward_id).await["stock_left"], 1);

    // Someone else's voucher does not exist for them.
    let r = other
        .post(
            &format!("/api/v1/member/vouchers/{voucher_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let theirs = other.get("/api/v1/member/vouchers").await;
    assert_eq!(theirs.body["items"], json!([]));
    assert_eq!(balance(&m).await, 300);

    let r = m
        .post(
            &format!("/api/v1/member/vouchers/{voucher_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["voucher"]["status"], "cancelled");
    assert_eq!(r.body["points_returned"], 700);
    assert_eq!(r.body["points_balance"], 1000);
    assert_eq!(balance(&m).await, 1000);
    assert_eq!(staff_reward(&chain, reward_id).await["stock_left"], 2);
    assert_ledger_consistent(&app).await;

    let again = m
        .post(
            &format!("/api/v1/member/vouchers/{voucher_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "voucher_not_cancellable"),
        "{again:?}"
    );
    assert_eq!(balance(&m).await, 1000);
    assert_eq!(staff_reward(&chain, reward_id).await["stock_left"], 2);

    let mine = m.get("/api/v1/member/vouchers").await;
    assert_eq!(mine.body["items"][0]["id"], voucher_id);
    assert_eq!(mine.body["items"][0]["status"], "cancelled");
    let unused = m.get("/api/v1/member/vouchers?status=unused").await;
    assert_eq!(unused.body["items"], json!([]));
    let bad = m.get("/api/v1/member/vouchers?status=lost").await;
    assert_eq!(
        (bad.status, bad.code()),
        (400, "validation_failed"),
        "{bad:?}"
    );

    // The desk cannot use a cancelled voucher.
    let code = r.body["voucher"]["code"].as_str().unwrap().to_string();
    let r = chain
        .desk
        .post(&format!("/api/v1/staff/vouchers/{code}/verify"), json!({}))
        .await;
    assert_eq!((r.status, r.code()), (409, "voucher_cancelled"), "{r:?}");
}

#[tokio::test]
async fn an_expired_voucher_can_be_neither_used_nor_cancelled() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let reward_id = new_reward(
        &chain,
        json!({"name": "体验券", "kind": "service", "points_price": 100, "stock": 5, "voucher_valid_days": 30}),
    )
    .await["id"]
    .as_i64()
    .unwrap();
    let (m, _) = member_with_points(&app, &chain, 6, 500).await;
    let r = redeem(&m, "exp-1", reward_id).await;
    assert_eq!(r.status, 201, "{r:?}");
    let voucher = r.body["voucher"].clone();
    let issued =
        chrono::NaiveDate::parse_from_str(voucher["expires_on"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    assert!(
        issued >= Utc::now().date_naive() + Duration::days(29),
        "{voucher}"
    );

    entity::voucher::Entity::update_many()
        .col_expr(
            entity::voucher::Column::ExpiresOn,
            Expr::value(Utc::now().date_naive() - Duration::days(2)),
        )
        .filter(entity::voucher::Column::Id.eq(voucher["id"].as_i64().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();

    let code = voucher["code"].as_str().unwrap();
    let r = chain
        .desk
        .post(&format!("/api/v1/staff/vouchers/{code}/verify"), json!({}))
        .await;
    assert_eq!((r.status, r.code()), (409, "voucher_expired"), "{r:?}");
    let r = m
        .post(
            &format!("/api/v1/member/vouchers/{}/cancel", voucher["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "voucher_not_cancellable"),
        "{r:?}"
    );
    let expired = m.get("/api/v1/member/vouchers?status=expired").await;
    assert_eq!(expired.body["items"][0]["id"], voucher["id"]);
    assert_eq!(expired.body["items"][0]["status"], "expired");
    assert_eq!(balance(&m).await, 400);
}

#[tokio::test]
async fn the_desk_verifies_a_voucher_once_and_only_in_its_store() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let store2 = create_store(&app, "徐汇店").await;
    create_staff(&app, "desk2", "front_desk", Some(store2)).await;
    let desk2 = staff_login_bearer(&app, "desk2").await;
    let local = new_reward(
        &chain,
        json!({"name": "静安店专享", "kind": "service", "points_price": 100, "stock": 5, "store_id": chain.store}),
    )
    .await["id"]
    .as_i64()
    .unwrap();
    let anywhere = new_reward(
        &chain,
        json!({"name": "通用护理", "kind": "service", "points_price": 100, "stock": 5}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let (m, member_id) = member_with_points(&app, &chain, 7, 500).await;
    // A customer of no store sees only what every store offers.
    let (outsider, _) = member_joined(&app, "openid-rewards-outsider", "13900000099").await;
    let catalogue = outsider.get("/api/v1/member/rewards").await;
    assert!(offered(&catalogue, local).is_none());
    assert!(offered(&catalogue, anywhere).is_some());
    let mine = m.get("/api/v1/member/rewards").await;
    assert_eq!(offered(&mine, local).unwrap()["store_id"], chain.store);
    let r = redeem(&m, "v-1", local).await;
    assert_eq!(r.status, 201, "{r:?}");
    let voucher = r.body["voucher"].clone();
    assert_eq!(voucher["store_id"], chain.store);
    let code = voucher["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 12);

    let r = desk2
        .post(&format!("/api/v1/staff/vouchers/{code}/verify"), json!({}))
        .await;
    assert_eq!((r.status, r.code()), (403, "wrong_store"), "{r:?}");

    let r = chain
        .desk
        .post(&format!("/api/v1/staff/vouchers/{code}/verify"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "used");
    assert_eq!(r.body["used_store_id"], chain.store);
    assert_eq!(r.body["member_id"], member_id);

    let r = chain
        .desk
        .post(&format!("/api/v1/staff/vouchers/{code}/verify"), json!({}))
        .await;
    assert_eq!((r.status, r.code()), (409, "voucher_used"), "{r:?}");
    assert!(r.body["error"]["used_at"].is_string(), "{r:?}");

    let r = chain
        .desk
        .post("/api/v1/staff/vouchers/ZZZZZZZZZZZZ/verify", json!({}))
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{r:?}");

    // A used voucher cannot be cancelled for its points.
    let r = m
        .post(
            &format!("/api/v1/member/vouchers/{}/cancel", voucher["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "voucher_not_cancellable"),
        "{r:?}"
    );
    let used = m.get("/api/v1/member/vouchers?status=used").await;
    assert_eq!(used.body["items"][0]["id"], voucher["id"]);
    assert_eq!(balance(&m).await, 400);

    // A chain-wide voucher is good in any store, typed as the desk hears it.
    let r = redeem(&m, "v-2", anywhere).await;
    assert_eq!(r.status, 201, "{r:?}");
    let code = r.body["voucher"]["code"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    let r = desk2
        .post(&format!("/api/v1/staff/vouchers/{code}/verify"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["used_store_id"], store2);

    let audit = chain
        .admin
        .get("/api/v1/staff/audit-log?action=voucher.verify")
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn only_admins_edit_the_catalogue_and_bad_input_names_the_field() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let ok = json!({"name": "补水护理", "kind": "service", "points_price": 300, "stock": 10});

    let r = chain.desk.post("/api/v1/staff/rewards", ok.clone()).await;
    assert_eq!((r.status, r.code()), (403, "permission_denied"), "{r:?}");
    let r = chain.desk.get("/api/v1/staff/rewards").await;
    assert_eq!(r.status, 200, "{r:?}");

    let start = Utc::now() + Duration::days(2);
    for (patch, field) in [
        (json!({"name": " "}), "name"),
        (json!({"name": "一".repeat(41)}), "name"),
        (json!({"kind": "coupon"}), "kind"),
        (json!({"points_price": 0}), "points_price"),
        (json!({"stock": -1}), "stock"),
        (json!({"per_member_limit": 0}), "per_member_limit"),
        (json!({"min_tier_code": "ruby"}), "min_tier_code"),
        (
            json!({"starts_at": start, "ends_at": start - Duration::hours(1)}),
            "ends_at",
        ),
        (json!({"voucher_valid_days": 0}), "voucher_valid_days"),
        (json!({"voucher_valid_days": 731}), "voucher_valid_days"),
        (json!({"kind": "cash_voucher"}), "face_value_fen"),
        (
            json!({"kind": "cash_voucher", "face_value_fen": 0}),
            "face_value_fen",
        ),
        (json!({"store_id": 999_999}), "store_id"),
    ] {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = chain.admin.post("/api/v1/staff/rewards", body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "validation_failed"),
            "{field}: {r:?}"
        );
        assert_eq!(r.body["error"]["field"], field, "{r:?}");
    }
    let r = chain.admin.get("/api/v1/staff/rewards").await;
    assert_eq!(r.body["rewards"], json!([]));

    let created = new_reward(
        &chain,
        json!({
            "name": "补水护理", "kind": "service", "points_price": 300, "stock": 10,
            "per_member_limit": 1, "min_tier_code": "gold"
        }),
    )
    .await;
    assert_eq!(created["stock_total"], 10);
    assert_eq!(created["stock_left"], 10);
    assert_eq!(created["voucher_valid_days"], 90);
    assert_eq!(created["min_tier_code"], "gold");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/staff/rewards/{id}");

    let r = chain.desk.patch(&path, json!({"add_stock": 5})).await;
    assert_eq!((r.status, r.code()), (403, "permission_denied"), "{r:?}");
    let r = chain.admin.patch(&path, json!({"add_stock": -11})).await;
    assert_eq!((r.status, r.code()), (409, "stock_below_zero"), "{r:?}");
    assert_eq!(r.body["error"]["stock_left"], 10);
    let r = chain
        .admin
        .patch(&path, json!({"add_stock": -4, "points_price": 250}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["stock_total"].clone(), r.body["stock_left"].clone()),
        (json!(6), json!(6))
    );
    assert_eq!(r.body["points_price"], 250);
    let r = chain
        .admin
        .patch(
            &path,
            json!({"per_member_limit": null, "min_tier_code": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["per_member_limit"], Value::Null);
    assert_eq!(r.body["min_tier_code"], Value::Null);
    assert_eq!(r.body["points_price"], 250);
    let r = chain
        .admin
        .patch(
            &path,
            json!({"ends_at": Utc::now() - Duration::days(1), "starts_at": Utc::now()}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "validation_failed"), "{r:?}");
    assert_eq!(r.body["error"]["field"], "ends_at");
    let (from, until) = (
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::days(30),
    );
    let r = chain
        .admin
        .patch(&path, json!({"starts_at": from, "ends_at": until}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let read = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
    };
    assert_eq!(read(&r.body["starts_at"]).timestamp(), from.timestamp());
    assert_eq!(read(&r.body["ends_at"]).timestamp(), until.timestamp());
    let listed = staff_reward(&chain, id).await;
    assert_eq!(read(&listed["ends_at"]).timestamp(), until.timestamp());
    let r = chain.admin.patch(&path, json!({"stock_left": 100})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = chain
        .admin
        .patch("/api/v1/staff/rewards/999999", json!({"active": false}))
        .await;
    assert_eq!(r.status, 404, "{r:?}");

    let audit = chain
        .admin
        .get(&format!(
            "/api/v1/staff/audit-log?target_type=reward&target_id={id}"
        ))
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "reward.update",
            "reward.update",
            "reward.update",
            "reward.create"
        ]
    );
}
