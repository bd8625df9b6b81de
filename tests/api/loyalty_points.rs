//! Membership, tiers, the points ledger, consumption and refunds, referral and check-in, staff
//! adjustments, the rules page and the card cache.

use chrono::Datelike;
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::*;

fn today() -> chrono::NaiveDate {
    memberhub::loyalty::calendar::Calendar::new(chrono_tz::Asia::Shanghai).today()
}

fn member_id(card: &Value) -> i64 {
    card["member_id"].as_i64().unwrap()
}

async fn card(m: &MemberClient) -> Value {
    let r = m.get("/api/v1/member/me").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

async fn balance(m: &MemberClient) -> i64 {
    card(m).await["points_balance"].as_i64().unwrap()
}

/// A member who joined and whose customer belongs to the chain's store.
async fn served_member(
    app: &TestApp,
    chain: &Chain,
    openid: &str,
    phone: &str,
) -> (MemberClient, i64, i64) {
    let (m, card) = member_joined(app, openid, phone).await;
    let id = member_id(&card);
    let customer = chain.claim(app, id).await;
    (m, id, customer)
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn refund(chain: &Chain, consumption_id: i64, amount_fen: i64) -> Reply {
    chain
        .admin
        .post_keyed(
            &format!("/api/v1/staff/consumptions/{consumption_id}/refund"),
            &key(),
            json!({"amount_fen": amount_fen, "reason": "顾客退款"}),
        )
        .await
}

async fn entry_count(app: &TestApp, member: i64) -> u64 {
    entity::points_entry::Entity::find()
        .filter(entity::points_entry::Column::MemberId.eq(member))
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn joining_needs_consent_and_a_phone_and_gives_the_entry_card() {
    let app = spawn_app().await;
    let m = member_login(&app, "o-join").await;
    let r = m.post("/api/v1/member/join", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "consent_required"));
    m.post(
        "/api/v1/member/consent",
        json!({"policy_version": "2026-11", "marketing": false, "sensitive_health": false}),
    )
    .await;
    let r = m.post("/api/v1/member/join", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "phone_required"));
    let r = m.get("/api/v1/member/me").await;
    assert_eq!((r.status, r.code()), (404, "not_member"));

    let (m, joined) = member_joined(&app, "o-join-2", "13900000001").await;
    assert_eq!(joined["tier"]["code"], "normal");
    assert_eq!(joined["tier"]["name"], "普通会员");
    assert_eq!(joined["points_balance"], 0);
    assert!(joined["member_no"].as_str().unwrap().starts_with("MH"));
    assert_eq!(joined["tier_valid_until"], Value::Null);
    assert_eq!(joined["next_tier"]["code"], "gold");
    assert_eq!(joined["next_tier"]["spend_needed_fen"], 3_000_000);
    // Joining again is harmless: the same card.
    let again = m.post("/api/v1/member/join", json!({})).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["member_no"], joined["member_no"]);
    // A new login shows the card at once.
    let login = member_login(&app, "o-join-2").await;
    let r = login.get("/api/v1/member/me").await;
    assert_eq!(r.body["member_no"], joined["member_no"]);
}

#[tokio::test]
async fn staff_enrol_at_the_desk_within_their_store_only() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let c = chain
        .desk
        .post(
            "/api/v1/staff/customers",
            json!({"name": "李女士", "phone": "13900000002"}),
        )
        .await;
    assert_eq!(c.status, 201, "{c:?}");
    let customer = c.body["id"].as_i64().unwrap();
    let r = chain
        .desk
        .post("/api/v1/staff/members", json!({"customer_id": customer}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["joined_via"], "desk");
    let again = chain
        .desk
        .post("/api/v1/staff/members", json!({"customer_id": customer}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["card"]["member_id"], r.body["card"]["member_id"]);

    let other = create_store(&app, "徐汇店").await;
    create_staff(&app, "desk2", "front_desk", Some(other)).await;
    let desk2 = staff_login_bearer(&app, "desk2").await;
    let r2 = desk2
        .post("/api/v1/staff/members", json!({"customer_id": customer}))
        .await;
    assert_eq!(r2.status, 404);
    let member = r.body["card"]["member_id"].as_i64().unwrap();
    assert_eq!(
        desk2
            .get(&format!("/api/v1/staff/members/{member}"))
            .await
            .status,
        404
    );
    assert_eq!(
        chain
            .desk
            .get(&format!("/api/v1/staff/members/{member}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn points_follow_tier_multiplier_and_the_larger_bonus() {
    let day = today();
    let app = spawn_app_with(|s| {
        s.loyalty.member_days = vec![day.day()];
        s.loyalty.birthday_multiplier_pct = 300;
    })
    .await;
    let chain = chain(&app).await;
    let (m, _, customer) = served_member(&app, &chain, "o-bonus", "13900000003").await;
    // Member day only: x2. 1,234.56 yuan -> 1,234 points x2.
    let r = chain.consume(customer, "A-1", 123_456).await;
    assert_eq!(r["consumption"]["points_earned"], 2468);
    assert_eq!(r["consumption"]["bonus"], "member_day");
    // Birthday this month too: x3 beats x2, they do not stack.
    let birthday = chrono::NaiveDate::from_ymd_opt(1990, day.month(), 1).unwrap();
    let p = m
        .patch("/api/v1/member/me", json!({"birthday": birthday}))
        .await;
    assert_eq!(p.status, 200, "{p:?}");
    let r = chain.consume(customer, "A-2", 10_000).await;
    assert_eq!(r["consumption"]["points_earned"], 300);
    assert_eq!(r["consumption"]["bonus"], "birthday_month");
    // The birthday is set once by the member.
    let again = m
        .patch("/api/v1/member/me", json!({"birthday": "1991-01-01"}))
        .await;
    assert_eq!((again.status, again.code()), (409, "birthday_already_set"));
    assert_eq!(balance(&m).await, 2768);
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn earning_without_bonus_and_at_a_higher_tier() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, _, customer) = served_member(&app, &chain, "o-tier", "13900000004").await;
    // One fen short of gold: still 普通会员.
    let r = chain.consume(customer, "T-1", 2_999_999).await;
    assert_eq!(r["upgraded_to"], Value::Null);
    assert_eq!(r["consumption"]["points_earned"], 29_999);
    assert_eq!(r["consumption"]["bonus"], Value::Null);
    // Exactly at the threshold: gold, valid 12 months from today.
    let r = chain.consume(customer, "T-2", 1).await;
    assert_eq!(r["upgraded_to"], "gold");
    let c = card(&m).await;
    assert_eq!(c["tier"]["code"], "gold");
    let until = memberhub::loyalty::calendar::add_months(today(), 12);
    assert_eq!(c["tier_valid_until"], json!(until));
    assert_eq!(c["spend_12m_fen"], 3_000_000);
    assert_eq!(c["next_tier"]["code"], "platinum");
    assert_eq!(c["next_tier"]["spend_needed_fen"], 5_000_000);
    // Gold earns x1.2.
    let r = chain.consume(customer, "T-3", 100_000).await;
    assert_eq!(r["consumption"]["points_earned"], 1200);
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn a_replayed_consumption_changes_nothing_and_a_reused_number_is_refused() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, id, customer) = served_member(&app, &chain, "o-replay", "13900000005").await;
    let body = json!({
        "customer_id": customer, "store_id": chain.store, "order_no": "POS-9",
        "items": [{"name": "光子嫩肤", "amount_fen": 150_000}], "paid_fen": 150_000,
    });
    // Ten copies at once (a POS retrying): one consumption, points once.
    let replies =
        join_all((0..10).map(|_| chain.desk.post("/api/v1/staff/consumptions", body.clone())))
            .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let replayed = replies
        .iter()
        .filter(|r| r.status == 200 && r.body["replayed"] == true)
        .count();
    assert_eq!((created, replayed), (1, 9), "{replies:?}");
    assert_eq!(balance(&m).await, 1500);
    assert_eq!(entry_count(&app, id).await, 1);
    let mut other = body.clone();
    other["paid_fen"] = json!(1);
    let r = chain.desk.post("/api/v1/staff/consumptions", other).await;
    assert_eq!((r.status, r.code()), (409, "order_no_conflict"));
    let visits = entity::customer::Entity::find_by_id(customer)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (visits.visit_count, visits.lifetime_spend_fen),
        (1, 150_000)
    );
    assert_eq!(balance(&m).await, 1500);
}

#[tokio::test]
async fn consumption_input_is_checked_and_bad_input_changes_nothing() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (_, _, customer) = served_member(&app, &chain, "o-bad", "13900000006").await;
    for (body, field) in [
        (
            json!({"customer_id": customer, "store_id": chain.store, "order_no": "", "paid_fen": 100}),
            "order_no",
        ),
        (
            json!({"customer_id": customer, "store_id": chain.store, "order_no": "X 1", "paid_fen": 100}),
            "order_no",
        ),
        (
            json!({"customer_id": customer, "store_id": chain.store, "order_no": "X1", "paid_fen": -1}),
            "paid_fen",
        ),
        (
            json!({"customer_id": customer, "store_id": chain.store, "order_no": "X1", "paid_fen": 100, "occurred_at": "2099-01-01T00:00:00Z"}),
            "occurred_at",
        ),
    ] {
        let r = chain.desk.post("/api/v1/staff/consumptions", body).await;
        assert_eq!(
            (r.status, r.body["error"]["field"].as_str()),
            (400, Some(field)),
            "{r:?}"
        );
    }
    let r = chain
        .desk
        .post("/api/v1/staff/consumptions", json!({"customer_id": customer, "store_id": chain.store + 100, "order_no": "X1", "paid_fen": 100}))
        .await;
    assert_eq!(r.status, 403);
    let n = entity::consumption::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // A consultant may not record consumptions.
    create_staff(&app, "gu", "consultant", Some(chain.store)).await;
    let gu = staff_login_bearer(&app, "gu").await;
    let r = gu
        .post("/api/v1/staff/consumptions", json!({"customer_id": customer, "store_id": chain.store, "order_no": "X1", "paid_fen": 100}))
        .await;
    assert_eq!((r.status, r.code()), (403, "permission_denied"));
}

#[tokio::test]
async fn refunds_reverse_points_own_lot_first_and_debt_is_repaid_by_the_next_earning() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, id, customer) = served_member(&app, &chain, "o-refund", "13900000007").await;
    let a = chain.consume(customer, "R-1", 100_000).await;
    let a_id = a["consumption"]["id"].as_i64().unwrap();
    assert_eq!(balance(&m).await, 1000);
    // Spend 700 of them.
    let r = chain
        .admin
        .post_keyed(
            &format!("/api/v1/staff/members/{id}/points/adjust"),
            &key(),
            json!({"delta": -700, "reason": "兑换线下礼品"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    // A partial refund of a third: 333 points back out.
    let r = refund(&chain, a_id, 33_333).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["points_reversed"], 333);
    assert_eq!(balance(&m).await, -33);
    // The rest: 667 more; the balance goes into debt.
    let r = refund(&chain, a_id, 66_667).await;
    assert_eq!(r.body["points_reversed"], 667);
    assert_eq!(r.body["points_balance"], -700);
    assert_eq!(card(&m).await["points_balance"], -700);
    // Nothing more to refund.
    let r = refund(&chain, a_id, 1).await;
    assert_eq!((r.status, r.code()), (409, "refund_exceeds_paid"));
    assert_eq!(r.body["error"]["refundable_fen"], 0);
    assert_ledger_consistent(&app).await;
    // The next earning repays the debt first.
    chain.consume(customer, "R-2", 200_000).await;
    assert_eq!(balance(&m).await, 1300);
    assert_ledger_consistent(&app).await;
    let lots = entity::points_lot::Entity::find()
        .filter(entity::points_lot::Column::MemberId.eq(id))
        .all(&app.state.db)
        .await
        .unwrap();
    let debt: i64 = lots
        .iter()
        .filter(|l| l.kind == "debt")
        .map(|l| l.remaining)
        .sum();
    assert_eq!(debt, 0);
    // The customer's figures follow: the refunded visit no longer counts.
    let c = entity::customer::Entity::find_by_id(customer)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.visit_count, c.lifetime_spend_fen), (1, 200_000));
    // The history tells the story, newest first.
    let h = m.get("/api/v1/member/points/entries?limit=10").await;
    let kinds: Vec<&str> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["earn", "reverse", "reverse", "adjust", "earn"]);
}

#[tokio::test]
async fn a_refund_retried_with_its_key_reverses_once() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, _, customer) = served_member(&app, &chain, "o-refkey", "13900000008").await;
    let a = chain.consume(customer, "K-1", 100_000).await;
    let path = format!(
        "/api/v1/staff/consumptions/{}/refund",
        a["consumption"]["id"]
    );
    let body = json!({"amount_fen": 40_000});
    let replies =
        join_all((0..5).map(|_| chain.admin.post_keyed(&path, "refund-1", body.clone()))).await;
    assert!(replies.iter().all(|r| r.status == 201), "{replies:?}");
    assert!(replies
        .iter()
        .all(|r| r.body["refund_id"] == replies[0].body["refund_id"]));
    assert_eq!(balance(&m).await, 600);
    let r = chain
        .admin
        .post_keyed(&path, "refund-1", json!({"amount_fen": 1}))
        .await;
    assert_eq!((r.status, r.code()), (422, "idempotency_key_reused"));
    // The front desk may not refund; a refund without a key is refused before anything changes.
    let r = chain
        .desk
        .post_keyed(&path, "refund-desk", json!({"amount_fen": 1}))
        .await;
    assert_eq!(r.status, 403);
    let r = chain.admin.post(&path, json!({"amount_fen": 1})).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    assert_eq!(balance(&m).await, 600);
}

#[tokio::test]
async fn a_refund_that_undoes_an_upgrade_undoes_the_tier() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, _, customer) = served_member(&app, &chain, "o-undo", "13900000009").await;
    chain.consume(customer, "U-1", 500_000).await;
    let big = chain.consume(customer, "U-2", 2_500_000).await;
    assert_eq!(big["upgraded_to"], "gold");
    let r = refund(&chain, big["consumption"]["id"].as_i64().unwrap(), 100_000).await;
    assert_eq!(r.body["tier_after"], "normal");
    let c = card(&m).await;
    assert_eq!(c["tier"]["code"], "normal");
    assert_eq!(c["tier_valid_until"], Value::Null);
    assert_eq!(c["spend_12m_fen"], 2_900_000);
}

async fn join_with_code(
    app: &TestApp,
    openid: &str,
    phone: &str,
    code: &str,
) -> (MemberClient, i64) {
    let m = member_login(app, openid).await;
    m.post(
        "/api/v1/member/consent",
        json!({"policy_version": "2026-11", "marketing": true, "sensitive_health": false}),
    )
    .await;
    let sandbox = app.state.sandbox.as_ref().unwrap();
    let pc = format!("phone-{}", uuid::Uuid::new_v4().simple());
    sandbox.add_phone_code(&pc, phone);
    assert_eq!(
        m.post("/api/v1/member/phone", json!({"code": pc}))
            .await
            .status,
        200
    );
    let r = m
        .post("/api/v1/member/join", json!({"referral_code": code}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = member_id(&r.body);
    (m, id)
}

#[tokio::test]
async fn a_referral_is_credited_once_and_reversed_by_a_full_refund_of_its_consumption() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (referrer, _, _) = served_member(&app, &chain, "o-ref", "13900000010").await;
    let code = referrer.get("/api/v1/member/referral").await.body["code"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = member_login(&app, "o-friend-bad").await;
    bad.post(
        "/api/v1/member/consent",
        json!({"policy_version": "2026-11", "marketing": true, "sensitive_health": false}),
    )
    .await;
    let sandbox = app.state.sandbox.as_ref().unwrap();
    sandbox.add_phone_code("pc-bad", "13900000099");
    bad.post("/api/v1/member/phone", json!({"code": "pc-bad"}))
        .await;
    let r = bad
        .post("/api/v1/member/join", json!({"referral_code": "nope"}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("referral_code"))
    );

    let (_, friend) = join_with_code(&app, "o-friend", "13900000011", &code).await;
    let friend_customer = chain.claim(&app, friend).await;
    let first = chain.consume(friend_customer, "F-1", 50_000).await;
    assert!(first["referral_credited_to"].is_i64());
    assert_eq!(balance(&referrer).await, 500);
    let second = chain.consume(friend_customer, "F-2", 50_000).await;
    assert_eq!(second["referral_credited_to"], Value::Null);
    assert_eq!(balance(&referrer).await, 500);
    // A partial refund still leaves a paid first visit: the referral stands.
    let first_id = first["consumption"]["id"].as_i64().unwrap();
    let r = refund(&chain, first_id, 10_000).await;
    assert_eq!(r.body["referral_reversed"], Value::Null);
    assert_eq!(balance(&referrer).await, 500);
    // Refunded in full, it no longer justifies the reward.
    let r = refund(&chain, first_id, 40_000).await;
    assert_eq!(r.body["referral_reversed"], 500);
    assert_eq!(balance(&referrer).await, 0);
    let entries = referrer.get("/api/v1/member/points/entries").await;
    assert_eq!(entries.body["items"][0]["source"], "referral_reversal");
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn referral_credits_stop_at_the_monthly_cap() {
    let app = spawn_app_with(|s| s.loyalty.referral_monthly_cap = 1).await;
    let chain = chain(&app).await;
    let (referrer, _, _) = served_member(&app, &chain, "o-cap", "13900000012").await;
    let code = referrer.get("/api/v1/member/referral").await.body["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, f1) = join_with_code(&app, "o-cap-1", "13900000013", &code).await;
    let (_, f2) = join_with_code(&app, "o-cap-2", "13900000014", &code).await;
    let c1 = chain.claim(&app, f1).await;
    let c2 = chain.claim(&app, f2).await;
    // Both first visits at once: the cap still holds.
    let (a, b) = tokio::join!(
        chain.consume(c1, "CAP-1", 10_000),
        chain.consume(c2, "CAP-2", 10_000)
    );
    let credited = [a, b]
        .iter()
        .filter(|r| r["referral_credited_to"].is_i64())
        .count();
    assert_eq!(credited, 1);
    assert_eq!(balance(&referrer).await, 500);
}

#[tokio::test]
async fn check_in_once_a_day_even_when_tapped_at_once() {
    let app = spawn_app().await;
    let (m, _) = member_joined(&app, "o-checkin", "13900000015").await;
    let replies = join_all((0..6).map(|_| m.post("/api/v1/member/checkins", json!({})))).await;
    let ok: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(ok.len(), 1, "{replies:?}");
    assert_eq!(ok[0].body["points"], 10);
    assert!(replies
        .iter()
        .filter(|r| r.status != 201)
        .all(|r| r.code() == "already_checked_in"));
    assert_eq!(balance(&m).await, 10);
    assert_eq!(card(&m).await["checked_in_today"], true);
    let h = m.get("/api/v1/member/checkins").await;
    assert_eq!(h.body["dates"], json!([today()]));
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn staff_adjustments_need_a_reason_are_audited_and_cannot_overdraw() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, id, _) = served_member(&app, &chain, "o-adjust", "13900000016").await;
    let path = format!("/api/v1/staff/members/{id}/points/adjust");
    let r = chain
        .admin
        .post(&path, json!({"delta": 50, "reason": "补发"}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    let r = chain
        .admin
        .post_keyed(&path, &key(), json!({"delta": 50, "reason": " "}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("reason"))
    );
    let r = chain
        .admin
        .post_keyed(&path, &key(), json!({"delta": 0, "reason": "x"}))
        .await;
    assert_eq!(r.body["error"]["field"], "delta");
    let r = chain
        .admin
        .post_keyed(&path, &key(), json!({"delta": i64::MIN, "reason": "x"}))
        .await;
    assert_eq!(r.body["error"]["field"], "delta");
    let r = chain
        .admin
        .post_keyed(&path, "adj-1", json!({"delta": 200, "reason": "活动补发"}))
        .await;
    assert_eq!(r.status, 201);
    let r2 = chain
        .admin
        .post_keyed(&path, "adj-1", json!({"delta": 200, "reason": "活动补发"}))
        .await;
    assert_eq!(r2.body, r.body);
    assert_eq!(r2.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(balance(&m).await, 200);
    let r = chain
        .admin
        .post_keyed(&path, &key(), json!({"delta": -201, "reason": "扣减"}))
        .await;
    assert_eq!((r.status, r.code()), (409, "insufficient_points"));
    assert_eq!(balance(&m).await, 200);
    let r = chain
        .desk
        .post_keyed(&path, &key(), json!({"delta": 5, "reason": "x"}))
        .await;
    assert_eq!((r.status, r.code()), (403, "permission_denied"));
    let audit = chain
        .admin
        .get("/api/v1/staff/audit-log?action=points.adjust")
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    assert!(audit.text.contains("活动补发"));
    let h = m.get("/api/v1/member/points/entries").await;
    assert_eq!(h.body["items"][0]["reason"], "人工调整：活动补发");
    // Staff of the member's store read the same history; other stores do not see the member.
    let staff_view = chain
        .desk
        .get(&format!("/api/v1/staff/members/{id}/points/entries"))
        .await;
    assert_eq!(staff_view.body["items"], h.body["items"]);
    let other = create_store(&app, "浦东店").await;
    create_staff(&app, "desk3", "front_desk", Some(other)).await;
    let desk3 = staff_login_bearer(&app, "desk3").await;
    assert_eq!(
        desk3
            .get(&format!("/api/v1/staff/members/{id}/points/entries"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn points_history_pages_by_cursor_and_is_each_members_own() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, id, customer) = served_member(&app, &chain, "o-page", "13900000017").await;
    let (other, _) = member_joined(&app, "o-page-other", "13900000018").await;
    for i in 0..5 {
        chain
            .consume(customer, &format!("P-{i}"), 10_000 * (i + 1))
            .await;
    }
    let first = m.get("/api/v1/member/points/entries?limit=2").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(first.body["items"][0]["delta"], 500);
    let cursor = first.body["next_cursor"].as_i64().unwrap();
    let rest = m
        .get(&format!(
            "/api/v1/member/points/entries?limit=10&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    // Another member sees only their own (empty) history, whatever cursor they pass.
    let theirs = other
        .get(&format!(
            "/api/v1/member/points/entries?cursor={}",
            cursor + 100
        ))
        .await;
    assert_eq!(theirs.body["items"], json!([]));
    assert!(m.get("/api/v1/member/points/entries?limit=0").await.status == 400);
    // Another member's id in a staff path is not theirs to use: member tokens are not staff.
    let r = other
        .post(
            &format!("/api/v1/staff/members/{id}/points/adjust"),
            json!({"delta": 5, "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn the_card_is_never_older_than_the_members_own_last_write() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, _, customer) = served_member(&app, &chain, "o-fresh", "13900000019").await;
    for i in 0..5 {
        // Warm the cache, change the balance, read again: always the new figure.
        assert_eq!(balance(&m).await, i * 100);
        chain.consume(customer, &format!("C-{i}"), 10_000).await;
    }
    assert_eq!(balance(&m).await, 500);
    m.post("/api/v1/member/checkins", json!({})).await;
    assert_eq!(balance(&m).await, 510);
    // A change to the tier table shows on every card at once.
    let tiers = chain.admin.get("/api/v1/staff/tiers").await.body;
    let mut input: Vec<Value> = tiers["tiers"].as_array().unwrap().clone();
    for t in &mut input {
        let t = t.as_object_mut().unwrap();
        t.remove("rank");
    }
    input[0]["name"] = json!("银卡会员");
    let r = chain
        .admin
        .put("/api/v1/staff/tiers", json!({"tiers": input}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(card(&m).await["tier"]["name"], "银卡会员");
}

#[tokio::test]
async fn the_tier_table_is_validated_and_tiers_in_use_stay() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (_, _, customer) = served_member(&app, &chain, "o-tiers", "13900000020").await;
    chain.consume(customer, "G-1", 3_000_000).await;
    let tier = |code: &str, threshold: i64| json!({"code": code, "name": code, "threshold_fen": threshold, "discount_pct": 95, "multiplier_pct": 100, "booking_lead_hours": 0, "benefits": []});
    let r = chain
        .admin
        .put(
            "/api/v1/staff/tiers",
            json!({"tiers": [tier("normal", 0), tier("gold", 0)]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("tiers[1].threshold_fen"))
    );
    let r = chain
        .admin
        .put(
            "/api/v1/staff/tiers",
            json!({"tiers": [tier("normal", 100)]}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "tiers[0].threshold_fen");
    // Gold is held by a member: it cannot be removed.
    let r = chain
        .admin
        .put(
            "/api/v1/staff/tiers",
            json!({"tiers": [tier("normal", 0), tier("platinum", 100)]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "tier_in_use"));
    let r = chain
        .desk
        .put("/api/v1/staff/tiers", json!({"tiers": [tier("normal", 0)]}))
        .await;
    assert_eq!(r.status, 403);
    let listed = chain.desk.get("/api/v1/staff/tiers").await;
    assert_eq!(listed.body["tiers"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_rules_page_is_generated_from_the_live_configuration() {
    let app = spawn_app_with(|s| {
        s.loyalty.checkin_points = 15;
        s.loyalty.member_days = vec![7, 17];
    })
    .await;
    let r = app
        .client
        .get(app.url("/api/v1/member/rules"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rules: Value = r.json().await.unwrap();
    assert_eq!(rules["checkin_points"], 15);
    assert!(rules["checkin"].as_str().unwrap().contains("15 分"));
    assert_eq!(rules["bonuses"][1]["days"], json!([7, 17]));
    assert!(rules["bonuses"][1]["description"]
        .as_str()
        .unwrap()
        .contains("7 日、17 日"));
    let tiers = rules["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 4);
    assert_eq!(tiers[3]["name"], "星钻会员");
    assert_eq!(tiers[3]["threshold_fen"], 20_000_000);
    assert!(tiers[3]["description"]
        .as_str()
        .unwrap()
        .contains("20 万元"));
    assert!(tiers[1]["description"].as_str().unwrap().contains("1.2 倍"));
}

#[tokio::test]
async fn customers_are_enrolled_on_their_first_paid_consumption_when_configured() {
    let app = spawn_app_with(|s| s.loyalty.auto_enrol = true).await;
    let chain = chain(&app).await;
    let c = chain
        .desk
        .post(
            "/api/v1/staff/customers",
            json!({"name": "周女士", "phone": "13900000021"}),
        )
        .await;
    let customer = c.body["id"].as_i64().unwrap();
    let r = chain.consume(customer, "AE-1", 88_800).await;
    assert_eq!(r["enrolled"], true);
    assert_eq!(r["points_balance"], 888);
    let r = chain.consume(customer, "AE-2", 100).await;
    assert_eq!(r["enrolled"], false);
}

/// The balance invariant under randomised sequences: consumptions, partial and full refunds,
/// adjustments both ways, check-ins and expiries, for several members at once.
#[tokio::test]
async fn balance_equals_live_lots_after_random_operations() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let mut members = Vec::new();
    for i in 0..3 {
        members.push(
            served_member(
                &app,
                &chain,
                &format!("o-rand-{i}"),
                &format!("1390000010{i}"),
            )
            .await,
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    let mut consumptions: Vec<(usize, i64, i64)> = Vec::new();
    for step in 0..60 {
        // Each round touches every member concurrently with one random operation each.
        let mut ops = Vec::new();
        for (idx, (m, id, customer)) in members.iter().enumerate() {
            let choice = rng.random_range(0..5);
            let amount = rng.random_range(1..200_000i64);
            let refundable = consumptions
                .iter()
                .filter(|c| c.0 == idx)
                .cloned()
                .collect::<Vec<_>>();
            let pick =
                (!refundable.is_empty()).then(|| refundable[rng.random_range(0..refundable.len())]);
            let (m, id, customer, chain) = (m.clone(), *id, *customer, &chain);
            ops.push(async move {
                match (choice, pick) {
                    (1, Some((_, cid, paid))) => {
                        let r = refund(chain, cid, (amount % paid).max(1)).await;
                        assert!(
                            r.status == 201 || r.code() == "refund_exceeds_paid",
                            "{r:?}"
                        );
                        None
                    }
                    (2, _) => {
                        let delta = if amount % 2 == 0 {
                            amount / 100 + 1
                        } else {
                            -(amount / 100 + 1)
                        };
                        let r = chain
                            .admin
                            .post_keyed(
                                &format!("/api/v1/staff/members/{id}/points/adjust"),
                                &key(),
                                json!({"delta": delta, "reason": "随机"}),
                            )
                            .await;
                        assert!(
                            r.status == 201 || r.code() == "insufficient_points",
                            "{r:?}"
                        );
                        None
                    }
                    (3, _) => {
                        let r = m.post("/api/v1/member/checkins", json!({})).await;
                        assert!(r.status == 201 || r.code() == "already_checked_in");
                        None
                    }
                    _ => {
                        let r = chain
                            .consume(customer, &format!("RND-{step}-{idx}"), amount)
                            .await;
                        Some((idx, r["consumption"]["id"].as_i64().unwrap(), amount))
                    }
                }
            });
        }
        for c in join_all(ops).await.into_iter().flatten() {
            consumptions.push(c);
        }
        if step % 15 == 14 {
            // Let some lots fall due and expire them as the nightly job does.
            use sea_orm::sea_query::Expr;
            entity::points_lot::Entity::update_many()
                .col_expr(
                    entity::points_lot::Column::ExpiresOn,
                    Expr::value(today() - chrono::Days::new(1)),
                )
                .filter(entity::points_lot::Column::Id.lt(step * 2))
                .filter(entity::points_lot::Column::Kind.eq("earn"))
                .exec(&app.state.db)
                .await
                .unwrap();
            let due = entity::points_lot::Entity::find()
                .filter(entity::points_lot::Column::ExpiresOn.lt(today()))
                .filter(entity::points_lot::Column::ExpiredAt.is_null())
                .all(&app.state.db)
                .await
                .unwrap();
            for lot in due {
                memberhub::db::write(&app.state.db, move |txn| {
                    Box::pin(
                        async move { memberhub::loyalty::ledger::expire_lot(txn, lot.id).await },
                    )
                })
                .await
                .unwrap();
            }
        }
        assert_ledger_consistent(&app).await;
    }
    // Every entry's balance_after chains: each equals the previous plus its delta.
    for (_, id, _) in &members {
        let entries = entity::points_entry::Entity::find()
            .filter(entity::points_entry::Column::MemberId.eq(*id))
            .all(&app.state.db)
            .await
            .unwrap();
        let mut running = 0;
        let mut sorted = entries.clone();
        sorted.sort_by_key(|e| e.id);
        for e in sorted {
            running += e.delta;
            assert_eq!(e.balance_after, running, "entry {} of member {id}", e.id);
        }
    }
}

#[tokio::test]
async fn the_cached_card_path_honours_logout_and_other_members_tokens() {
    let app = spawn_app().await;
    let (m, joined) = member_joined(&app, "o-fast", "13900000030").await;
    let (other, other_card) = member_joined(&app, "o-fast-2", "13900000031").await;
    // Twice each: the second read comes from the cache by token.
    for _ in 0..2 {
        assert_eq!(card(&m).await["member_id"], joined["member_id"]);
        assert_eq!(card(&other).await["member_id"], other_card["member_id"]);
    }
    let r = m.post("/api/v1/member/auth/logout", json!({})).await;
    assert_eq!(r.status, 204);
    let r = m.get("/api/v1/member/me").await;
    assert_eq!(
        r.status, 401,
        "a logged-out token still read the card: {r:?}"
    );
    let forged = MemberClient {
        token: "not-a-token".into(),
        ..other.clone()
    };
    assert_eq!(forged.get("/api/v1/member/me").await.status, 401);
    assert_eq!(card(&other).await["member_id"], other_card["member_id"]);
}

#[tokio::test]
async fn points_past_their_last_day_are_never_spent_even_before_the_nightly_job() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, id, customer) = served_member(&app, &chain, "o-due", "13900000040").await;
    chain.consume(customer, "D-1", 50_000).await;
    chain.consume(customer, "D-2", 30_000).await;
    // The first lot's last day was yesterday; the job has not run yet.
    use sea_orm::sea_query::Expr;
    let first = entity::points_lot::Entity::find()
        .filter(entity::points_lot::Column::MemberId.eq(id))
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .min_by_key(|l| l.id)
        .unwrap();
    entity::points_lot::Entity::update_many()
        .col_expr(
            entity::points_lot::Column::ExpiresOn,
            Expr::value(today() - chrono::Days::new(1)),
        )
        .filter(entity::points_lot::Column::Id.eq(first.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let path = format!("/api/v1/staff/members/{id}/points/adjust");
    let r = chain
        .admin
        .post_keyed(&path, &key(), json!({"delta": -600, "reason": "兑换"}))
        .await;
    assert_eq!((r.status, r.code()), (409, "insufficient_points"), "{r:?}");
    let r = chain
        .admin
        .post_keyed(&path, &key(), json!({"delta": -300, "reason": "兑换"}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["points_balance"], 0);
    let h = m.get("/api/v1/member/points/entries").await;
    let kinds: Vec<&str> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["adjust", "expire", "earn", "earn"]);
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn referrals_never_run_in_a_circle() {
    let app = spawn_app().await;
    // A binds a phone but does not join yet; B joins with A's code; A then joins with B's.
    let a = member_login(&app, "o-circle-a").await;
    a.post(
        "/api/v1/member/consent",
        json!({"policy_version": "2026-11", "marketing": true, "sensitive_health": false}),
    )
    .await;
    let sandbox = app.state.sandbox.as_ref().unwrap();
    sandbox.add_phone_code("pc-circle-a", "13900000041");
    assert_eq!(
        a.post("/api/v1/member/phone", json!({"code": "pc-circle-a"}))
            .await
            .status,
        200
    );
    let a_code = a.get("/api/v1/member/referral").await.body["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (b, b_id) = join_with_code(&app, "o-circle-b", "13900000042", &a_code).await;
    let b_code = b.get("/api/v1/member/referral").await.body["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = a
        .post("/api/v1/member/join", json!({"referral_code": b_code}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let a_customer = customer_of_member(&app, member_id(&r.body)).await;
    let a_row = entity::customer::Entity::find_by_id(a_customer)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a_row.referrer_id, None);
    let b_row = entity::customer::Entity::find_by_id(customer_of_member(&app, b_id).await)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b_row.referrer_id, Some(a_customer));
    // Joining again with a code changes nothing either.
    let again = b
        .post("/api/v1/member/join", json!({"referral_code": a_code}))
        .await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn each_refund_may_lower_an_upgrade_further() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, _, customer) = served_member(&app, &chain, "o-steps", "13900000043").await;
    let big = chain.consume(customer, "S-1", 8_000_000).await;
    assert_eq!(big["upgraded_to"], "platinum");
    let id = big["consumption"]["id"].as_i64().unwrap();
    let r = refund(&chain, id, 4_000_000).await;
    assert_eq!(r.body["tier_after"], "gold");
    let r = refund(&chain, id, 2_000_000).await;
    assert_eq!(r.body["tier_after"], "normal");
    assert_eq!(card(&m).await["tier"]["code"], "normal");
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn the_points_history_cannot_be_rewritten_even_in_the_database() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let (m, _) = member_joined(&app, "o-append", "13900000044").await;
    m.post("/api/v1/member/checkins", json!({})).await;
    let db = &app.state.db;
    assert!(db
        .execute_unprepared("UPDATE points_entry SET delta = 1000")
        .await
        .is_err());
    assert!(db
        .execute_unprepared("DELETE FROM points_entry")
        .await
        .is_err());
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        assert!(db
            .execute_unprepared("TRUNCATE points_entry CASCADE")
            .await
            .is_err());
    }
    assert_eq!(balance(&m).await, 10);
    let h = m.get("/api/v1/member/points/entries").await;
    assert_eq!(h.body["items"][0]["delta"], 10);
}
