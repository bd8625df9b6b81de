//! The nightly jobs: points expiry on the right day and once, expiry reminders queued once,
//! tier retention (renewal, downgrade to what the spend meets, a backlog of missed nights, a
//! manual floor), retention reminders with the missing amount, concurrent runs, the admin
//! endpoint, the command line's entry point and the in-server schedule.

use std::time::Duration;

use chrono::{Days, NaiveDate};
use memberhub::loyalty::calendar::{add_months, Calendar};
use memberhub::loyalty::jobs::{self, JobContext, JobReport};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::helpers::{
    assert_ledger_consistent, chain, eventually, member_joined, run_job, spawn_app, spawn_app_with,
    Chain, MemberClient, TestApp,
};

// ---------------------------------------------------------------- helpers

fn today(app: &TestApp) -> NaiveDate {
    Calendar::new(app.state.settings.loyalty.tz()).today()
}

fn days_before(date: NaiveDate, n: u64) -> NaiveDate {
    date - Days::new(n)
}

fn days_after(date: NaiveDate, n: u64) -> NaiveDate {
    date + Days::new(n)
}

fn count(report: &JobReport, key: &str) -> i64 {
    *report
        .counts
        .get(key)
        .unwrap_or_else(|| panic!("no count {key} in {report:?}"))
}

/// Every count of the report is zero.
fn assert_quiet(report: &JobReport) {
    assert!(
        report.counts.values().all(|n| *n == 0),
        "a second run did something: {report:?}"
    );
}

/// A member claimed into the chain's store: the client, member id and customer id.
async fn joined(app: &TestApp, chain: &Chain, n: u32) -> (MemberClient, i64, i64) {
    let (m, card) = member_joined(app, &format!("openid-jobs-{n}"), &format!("137{n:08}")).await;
    let member_id = card["member_id"].as_i64().unwrap();
    let customer_id = chain.claim(app, member_id).await;
    (m, member_id, customer_id)
}

/// A paid consumption that happened `days_ago` days ago (late POS posting).
async fn consume_days_ago(
    chain: &Chain,
    customer_id: i64,
    order_no: &str,
    paid_fen: i64,
    days_ago: i64,
) {
    let at = chrono::Utc::now() - chrono::Duration::days(days_ago);
    let r = chain
        .desk
        .post(
            "/api/v1/staff/consumptions",
            json!({
                "customer_id": customer_id,
                "store_id": chain.store,
                "order_no": order_no,
                "items": [{"name": "热玛吉", "quantity": 1, "amount_fen": paid_fen}],
                "paid_fen": paid_fen,
                "occurred_at": at,
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

async fn card(m: &MemberClient) -> Value {
    let r = m.get("/api/v1/member/me").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

async fn member_row(app: &TestApp, member_id: i64) -> entity::member::Model {
    entity::member::Entity::find_by_id(member_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

async fn lot(app: &TestApp, lot_id: i64) -> entity::points_lot::Model {
    entity::points_lot::Entity::find_by_id(lot_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

/// The lot a consumption's points went into.
async fn lot_of(app: &TestApp, recorded: &Value) -> i64 {
    use entity::consumption::Entity;
    let id = recorded["consumption"]["id"].as_i64().unwrap();
    Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .lot_id
        .expect("the consumption earned no lot")
}

async fn set_lot_expiry(app: &TestApp, lot_id: i64, expires_on: NaiveDate) {
    use entity::points_lot::{Column, Entity};
    Entity::update_many()
        .col_expr(Column::ExpiresOn, Expr::value(expires_on))
        .filter(Column::Id.eq(lot_id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn tier_id(app: &TestApp, code: &str) -> i64 {
    use entity::tier::{Column, Entity};
    Entity::find()
        .filter(Column::Code.eq(code))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn tier_code(app: &TestApp, id: i64) -> String {
    entity::tier::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .code
}

/// Gives a member a tier and its last day straight in the database (as if earned earlier).
async fn set_tier(app: &TestApp, member_id: i64, code: &str, valid_until: Option<NaiveDate>) {
    use entity::member::{Column, Entity};
    let id = tier_id(app, code).await;
    Entity::update_many()
        .col_expr(Column::TierId, Expr::value(id))
        .col_expr(Column::TierValidUntil, Expr::value(valid_until))
        .filter(Column::Id.eq(member_id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn set_valid_until(app: &TestApp, member_id: i64, valid_until: NaiveDate) {
    use entity::member::{Column, Entity};
    Entity::update_many()
        .col_expr(Column::TierValidUntil, Expr::value(valid_until))
        .filter(Column::Id.eq(member_id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn entries(app: &TestApp, member_id: i64) -> Vec<entity::points_entry::Model> {
    use entity::points_entry::{Column, Entity};
    Entity::find()
        .filter(Column::MemberId.eq(member_id))
        .order_by_asc(Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn outbox(app: &TestApp, kind: &str) -> Vec<(entity::outbox_message::Model, Value)> {
    use entity::outbox_message::{Column, Entity};
    Entity::find()
        .filter(Column::Kind.eq(kind))
        .order_by_asc(Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let payload = serde_json::from_str(&m.payload).unwrap();
            (m, payload)
        })
        .collect()
}

// ---------------------------------------------------------------- points-expiry

#[tokio::test]
async fn points_due_before_the_run_date_expire_once_and_points_due_that_day_do_not() {
    // Arrange: three lots of 100, 200 and 400 points; the first two were last usable before
    // today, the third is usable through today.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (m, member_id, customer_id) = joined(&app, &chain, 1).await;
    let mut lots = Vec::new();
    for (i, paid) in [10_000, 20_000, 40_000].into_iter().enumerate() {
        let r = chain.consume(customer_id, &format!("EXP-{i}"), paid).await;
        lots.push(lot_of(&app, &r).await);
    }
    let today = today(&app);
    set_lot_expiry(&app, lots[0], days_before(today, 1)).await;
    set_lot_expiry(&app, lots[1], days_before(today, 40)).await;
    set_lot_expiry(&app, lots[2], today).await;
    // The card is cached before the run: the run must make it stale.
    assert_eq!(card(&m).await["points_balance"], 700);
    let before = entries(&app, member_id).await.len();

    // Act
    let report = run_job(&app, "points-expiry", today).await;

    // Assert
    assert_eq!(report.job, "points-expiry");
    assert_eq!(report.date, today);
    assert_eq!(count(&report, "lots_expired"), 2, "{report:?}");
    assert_eq!(count(&report, "points_expired"), 300, "{report:?}");
    assert_eq!(count(&report, "failed"), 0);
    assert!(lot(&app, lots[0]).await.expired_at.is_some());
    assert!(lot(&app, lots[1]).await.expired_at.is_some());
    let kept = lot(&app, lots[2]).await;
    assert!(kept.expired_at.is_none());
    assert_eq!(kept.remaining, 400);
    let all = entries(&app, member_id).await;
    let expired: Vec<_> = all[before..].iter().collect();
    assert_eq!(expired.len(), 2);
    assert!(expired.iter().all(|e| e.kind == "expire"));
    let deltas: Vec<i64> = expired.iter().map(|e| e.delta).collect();
    assert_eq!(deltas, vec![-100, -200]);
    assert_eq!(expired[1].balance_after, 400);
    assert_eq!(member_row(&app, member_id).await.points_balance, 400);
    let c = card(&m).await;
    assert_eq!(c["points_balance"], 400);
    assert_ledger_consistent(&app).await;

    // A second run for the same day changes nothing.
    let again = run_job(&app, "points-expiry", today).await;
    assert_quiet(&again);
    assert_eq!(entries(&app, member_id).await.len(), all.len());
    assert_eq!(member_row(&app, member_id).await.points_balance, 400);

    // Once the third lot's last day is past (played by moving it back a day), it goes too.
    set_lot_expiry(&app, lots[2], days_before(today, 1)).await;
    let next = run_job(&app, "points-expiry", today).await;
    assert_eq!(count(&next, "points_expired"), 400);
    assert_eq!(card(&m).await["points_balance"], 0);
    assert_ledger_consistent(&app).await;
}

#[tokio::test]
async fn a_lot_already_spent_is_closed_without_touching_the_balance() {
    // Arrange: 100 points spent down to nothing by a refund, then past their expiry.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (_m, member_id, customer_id) = joined(&app, &chain, 2).await;
    let r = chain.consume(customer_id, "SPENT-1", 10_000).await;
    let spent_lot = lot_of(&app, &r).await;
    let consumption_id = r["consumption"]["id"].as_i64().unwrap();
    let refund = chain
        .admin
        .post_keyed(
            &format!("/api/v1/staff/consumptions/{consumption_id}/refund"),
            "refund-spent-1",
            json!({"amount_fen": 10_000}),
        )
        .await;
    assert_eq!(refund.status, 201, "{refund:?}");
    let r = chain.consume(customer_id, "SPENT-2", 5_000).await;
    let live_lot = lot_of(&app, &r).await;
    let today = today(&app);
    set_lot_expiry(&app, spent_lot, days_before(today, 1)).await;
    let before = entries(&app, member_id).await.len();

    // Act
    let report = run_job(&app, "points-expiry", today).await;

    // Assert: the empty lot is closed (it will not be scanned again), nothing is deducted.
    assert_eq!(count(&report, "lots_expired"), 0, "{report:?}");
    assert_eq!(count(&report, "points_expired"), 0);
    assert!(lot(&app, spent_lot).await.expired_at.is_some());
    assert!(lot(&app, live_lot).await.expired_at.is_none());
    assert_eq!(entries(&app, member_id).await.len(), before);
    assert_eq!(member_row(&app, member_id).await.points_balance, 50);
    assert_ledger_consistent(&app).await;
}

// ---------------------------------------------------------------- points-expiry-reminders

#[tokio::test]
async fn members_with_points_expiring_within_30_days_are_reminded_once() {
    // Arrange: the first member has 100 points expiring in 10 days and 200 on the window's
    // last day (30 days), plus 400 just outside it; the second only has points in 40 days.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let (_a, soon, soon_customer) = joined(&app, &chain, 3).await;
    for (i, (paid, in_days)) in [(10_000, 10), (20_000, 30), (40_000, 31)]
        .into_iter()
        .enumerate()
    {
        let r = chain
            .consume(soon_customer, &format!("REM-A-{i}"), paid)
            .await;
        let lot = lot_of(&app, &r).await;
        set_lot_expiry(&app, lot, days_after(today, in_days)).await;
    }
    let (_b, later, later_customer) = joined(&app, &chain, 4).await;
    let r = chain.consume(later_customer, "REM-B-0", 50_000).await;
    set_lot_expiry(&app, lot_of(&app, &r).await, days_after(today, 40)).await;

    // Act
    let report = run_job(&app, "points-expiry-reminders", today).await;

    // Assert
    assert_eq!(count(&report, "queued"), 1, "{report:?}");
    assert_eq!(count(&report, "already_queued"), 0);
    let queued = outbox(&app, "points_expiring").await;
    assert_eq!(queued.len(), 1);
    let (msg, payload) = &queued[0];
    assert_eq!(msg.customer_id, soon_customer);
    assert_eq!(msg.status, "pending");
    let first = days_after(today, 10);
    assert_eq!(msg.reference, format!("member:{soon}:{first}"));
    let ten_o_clock = Calendar::new(app.state.settings.loyalty.tz()).start_of(today)
        + chrono::Duration::hours(10);
    assert_eq!(msg.due_at, ten_o_clock);
    assert_eq!(payload["member_id"], soon);
    assert_eq!(payload["points"], 300);
    assert_eq!(payload["expires_on"], first.to_string());
    assert_eq!(
        payload["dates"],
        json!([
            {"expires_on": first.to_string(), "points": 100},
            {"expires_on": days_after(today, 30).to_string(), "points": 200},
        ])
    );
    assert!(queued.iter().all(|(m, _)| m.customer_id != later_customer));
    assert_ne!(later, soon);

    // Again the same day, and again the next day for the same expiry date: nothing new.
    let again = run_job(&app, "points-expiry-reminders", today).await;
    assert_eq!(count(&again, "queued"), 0, "{again:?}");
    assert_eq!(count(&again, "already_queued"), 1);
    assert_eq!(outbox(&app, "points_expiring").await.len(), 1);
}

// ---------------------------------------------------------------- tier-retention

#[tokio::test]
async fn a_tier_drops_the_day_after_it_ends_to_the_highest_tier_the_spend_meets() {
    // Arrange: the first member holds platinum until `end` with 30,000 yuan of spend in the
    // 12 months up to it (gold's threshold); the second holds gold until `end` with no spend
    // in that window (they paid today, after it).
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let end = days_before(today, 5);
    let (_a, plat, plat_customer) = joined(&app, &chain, 5).await;
    consume_days_ago(&chain, plat_customer, "DOWN-A", 3_000_000, 20).await;
    set_tier(&app, plat, "platinum", Some(end)).await;
    let (b, gold, gold_customer) = joined(&app, &chain, 6).await;
    chain.consume(gold_customer, "DOWN-B", 3_000_000).await;
    set_valid_until(&app, gold, end).await;
    assert_eq!(card(&b).await["tier"]["code"], "gold");

    // Act 1: on its last day the tier still holds.
    let on_last_day = run_job(&app, "tier-retention", end).await;

    // Assert 1
    assert_eq!(count(&on_last_day, "renewed"), 0, "{on_last_day:?}");
    assert_eq!(count(&on_last_day, "downgraded"), 0, "{on_last_day:?}");
    assert_eq!(
        tier_code(&app, member_row(&app, plat).await.tier_id).await,
        "platinum"
    );

    // Act 2: the day after.
    let day_after = days_after(end, 1);
    let report = run_job(&app, "tier-retention", day_after).await;

    // Assert 2
    assert_eq!(count(&report, "downgraded"), 2, "{report:?}");
    assert_eq!(count(&report, "renewed"), 0);
    let a = member_row(&app, plat).await;
    assert_eq!(tier_code(&app, a.tier_id).await, "gold");
    assert_eq!(a.tier_valid_until, Some(add_months(end, 12)));
    assert_eq!(a.tier_source, "downgrade");
    let b_row = member_row(&app, gold).await;
    assert_eq!(tier_code(&app, b_row.tier_id).await, "normal");
    assert_eq!(b_row.tier_valid_until, None, "the entry tier does not end");
    assert_eq!(b_row.tier_source, "downgrade");
    assert_eq!(b_row.prev_tier_id, None);
    // The member's card shows it at once (the cached one was made stale).
    let c = card(&b).await;
    assert_eq!(c["tier"]["code"], "normal");
    assert_eq!(c["tier_valid_until"], Value::Null);

    let changed = outbox(&app, "tier_changed").await;
    assert_eq!(changed.len(), 2);
    let (msg, payload) = changed
        .iter()
        .find(|(m, _)| m.customer_id == plat_customer)
        .unwrap();
    assert_eq!(msg.reference, format!("member:{plat}:{end}"));
    assert_eq!(payload["from"], "platinum");
    assert_eq!(payload["to"], "gold");
    assert_eq!(payload["renewed"], false);
    assert_eq!(payload["valid_until"], add_months(end, 12).to_string());

    // A second run for that day does nothing and queues nothing.
    let again = run_job(&app, "tier-retention", day_after).await;
    assert_quiet(&again);
    assert_eq!(outbox(&app, "tier_changed").await.len(), 2);
    assert_eq!(
        tier_code(&app, member_row(&app, plat).await.tier_id).await,
        "gold"
    );
}

#[tokio::test]
async fn a_tier_whose_spend_still_meets_it_is_renewed_for_12_months_from_its_old_end() {
    // Arrange: gold earned by a consumption ten days ago, its validity ending yesterday.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let yesterday = days_before(today, 1);
    let (m, member_id, customer_id) = joined(&app, &chain, 7).await;
    consume_days_ago(&chain, customer_id, "RENEW-1", 3_000_000, 10).await;
    let upgraded = member_row(&app, member_id).await;
    assert_eq!(upgraded.tier_source, "upgrade");
    assert!(upgraded.prev_tier_id.is_some());
    set_valid_until(&app, member_id, yesterday).await;
    assert_eq!(card(&m).await["tier_valid_until"], yesterday.to_string());

    // Act
    let report = run_job(&app, "tier-retention", today).await;

    // Assert
    assert_eq!(count(&report, "renewed"), 1, "{report:?}");
    assert_eq!(count(&report, "downgraded"), 0);
    let row = member_row(&app, member_id).await;
    assert_eq!(tier_code(&app, row.tier_id).await, "gold");
    assert_eq!(row.tier_valid_until, Some(add_months(yesterday, 12)));
    assert_eq!(row.tier_source, "renewal");
    assert_eq!(row.prev_tier_id, None);
    assert_eq!(row.prev_tier_valid_until, None);
    let c = card(&m).await;
    assert_eq!(c["tier"]["code"], "gold");
    assert_eq!(c["tier_valid_until"], add_months(yesterday, 12).to_string());
    let changed = outbox(&app, "tier_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0].0.reference,
        format!("member:{member_id}:{yesterday}")
    );
    assert_eq!(changed[0].1["renewed"], true);
    assert_eq!(changed[0].1["from"], "gold");
    assert_eq!(changed[0].1["to"], "gold");

    let again = run_job(&app, "tier-retention", today).await;
    assert_quiet(&again);
    assert_eq!(outbox(&app, "tier_changed").await.len(), 1);
    assert_eq!(
        member_row(&app, member_id).await.tier_valid_until,
        Some(add_months(yesterday, 12))
    );
}

#[tokio::test]
async fn a_backlog_of_missed_nights_is_replayed_period_by_period() {
    // Arrange: gold ended 390 days ago; 30,000 yuan was spent 400 days ago (inside the first
    // period's window, outside the second's).
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let (_m, member_id, customer_id) = joined(&app, &chain, 8).await;
    let r = chain.consume(customer_id, "OLD-1", 3_000_000).await;
    let consumption_id = r["consumption"]["id"].as_i64().unwrap();
    {
        use entity::consumption::{Column, Entity};
        Entity::update_many()
            .col_expr(Column::BusinessDate, Expr::value(days_before(today, 400)))
            .filter(Column::Id.eq(consumption_id))
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    let first_end = days_before(today, 390);
    set_valid_until(&app, member_id, first_end).await;

    // Act
    let report = run_job(&app, "tier-retention", today).await;

    // Assert: renewed for the first period, then dropped at the end of the second.
    assert_eq!(count(&report, "renewed"), 1, "{report:?}");
    assert_eq!(count(&report, "downgraded"), 1, "{report:?}");
    let row = member_row(&app, member_id).await;
    assert_eq!(tier_code(&app, row.tier_id).await, "normal");
    assert_eq!(row.tier_valid_until, None);
    let refs: Vec<String> = outbox(&app, "tier_changed")
        .await
        .into_iter()
        .map(|(m, _)| m.reference)
        .collect();
    assert_eq!(
        refs,
        vec![
            format!("member:{member_id}:{first_end}"),
            format!("member:{member_id}:{}", add_months(first_end, 12)),
        ]
    );
    assert_quiet(&run_job(&app, "tier-retention", today).await);
}

#[tokio::test]
async fn a_manual_tier_floor_keeps_the_card_tier_after_a_downgrade() {
    // Arrange: gold earned today, a manual gold floor for 60 days, the earned gold's validity
    // ended two days ago with no spend in its window.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let (m, member_id, customer_id) = joined(&app, &chain, 9).await;
    chain.consume(customer_id, "FLOOR-1", 3_000_000).await;
    let floor_until = days_after(today, 60);
    let r = chain
        .admin
        .post(
            &format!("/api/v1/staff/members/{member_id}/manual-tier"),
            json!({"tier_code": "gold", "until": floor_until, "reason": "重要客户保级"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    set_valid_until(&app, member_id, days_before(today, 2)).await;

    // Act
    let report = run_job(&app, "tier-retention", today).await;

    // Assert: the earned tier drops, the manual floor is untouched and is what the card shows.
    assert_eq!(count(&report, "downgraded"), 1, "{report:?}");
    let row = member_row(&app, member_id).await;
    assert_eq!(tier_code(&app, row.tier_id).await, "normal");
    assert_eq!(row.manual_tier_id, Some(tier_id(&app, "gold").await));
    assert_eq!(row.manual_tier_until, Some(floor_until));
    let c = card(&m).await;
    assert_eq!(c["tier"]["code"], "gold");
    assert_eq!(c["tier"]["name"], "黄金会员");
    assert_eq!(c["tier_is_manual"], true);
    assert_eq!(c["tier_valid_until"], floor_until.to_string());
    let changed = outbox(&app, "tier_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].1["to"], "normal");
    assert_eq!(changed[0].1["effective"], "gold");
}

#[tokio::test]
async fn a_member_short_of_their_tier_gets_one_retention_reminder_with_the_missing_amount() {
    // Arrange, all holding gold: the first ends in 10 days with 10,000 yuan spent; the second
    // ends in 10 days and meets it; the third ends in 40 days (outside the window); the
    // fourth ends in 10 days without spend but has a manual gold floor for 100 days.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let end = days_after(today, 10);
    let (_a, short, short_customer) = joined(&app, &chain, 10).await;
    chain.consume(short_customer, "RET-A", 1_000_000).await;
    set_tier(&app, short, "gold", Some(end)).await;
    let (_b, met, met_customer) = joined(&app, &chain, 11).await;
    chain.consume(met_customer, "RET-B", 3_000_000).await;
    set_valid_until(&app, met, end).await;
    let (_c, later, _) = joined(&app, &chain, 12).await;
    set_tier(&app, later, "gold", Some(days_after(today, 40))).await;
    let (_d, floored, _) = joined(&app, &chain, 13).await;
    set_tier(&app, floored, "gold", Some(end)).await;
    let r = chain
        .admin
        .post(
            &format!("/api/v1/staff/members/{floored}/manual-tier"),
            json!({"tier_code": "gold", "until": days_after(today, 100), "reason": "重要客户保级"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Act
    let report = run_job(&app, "tier-retention", today).await;

    // Assert
    assert_eq!(count(&report, "reminders_queued"), 1, "{report:?}");
    assert_eq!(count(&report, "renewed") + count(&report, "downgraded"), 0);
    let reminders = outbox(&app, "retention_reminder").await;
    assert_eq!(reminders.len(), 1);
    let (msg, payload) = &reminders[0];
    assert_eq!(msg.customer_id, short_customer);
    assert_eq!(msg.reference, format!("member:{short}:{end}"));
    assert_eq!(payload["tier"], "gold");
    assert_eq!(payload["valid_until"], end.to_string());
    assert_eq!(payload["spend_fen"], 1_000_000);
    assert_eq!(payload["missing_fen"], 2_000_000);

    // The next run (same day or the next) does not remind again.
    let again = run_job(&app, "tier-retention", today).await;
    assert_eq!(count(&again, "reminders_queued"), 0, "{again:?}");
    assert_eq!(count(&again, "reminders_already_queued"), 1);
    assert_eq!(outbox(&app, "retention_reminder").await.len(), 1);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test]
async fn two_instances_running_the_same_jobs_at_once_do_the_work_once() {
    // Arrange: two expired lots and one tier period that ended.
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let (_m, member_id, customer_id) = joined(&app, &chain, 14).await;
    for (i, paid) in [10_000, 30_000].into_iter().enumerate() {
        let r = chain.consume(customer_id, &format!("RACE-{i}"), paid).await;
        set_lot_expiry(&app, lot_of(&app, &r).await, days_before(today, 1)).await;
    }
    set_tier(&app, member_id, "gold", Some(days_before(today, 1))).await;
    let before = entries(&app, member_id).await.len();

    // Act
    let (a, b) = tokio::join!(
        run_job(&app, "points-expiry", today),
        run_job(&app, "points-expiry", today)
    );
    let (c, d) = tokio::join!(
        run_job(&app, "tier-retention", today),
        run_job(&app, "tier-retention", today)
    );

    // Assert
    assert_eq!(
        count(&a, "points_expired") + count(&b, "points_expired"),
        400,
        "{a:?} {b:?}"
    );
    assert_eq!(count(&a, "lots_expired") + count(&b, "lots_expired"), 2);
    assert_eq!(entries(&app, member_id).await.len(), before + 2);
    assert_eq!(member_row(&app, member_id).await.points_balance, 0);
    assert_ledger_consistent(&app).await;
    assert_eq!(
        count(&c, "downgraded") + count(&d, "downgraded"),
        1,
        "{c:?} {d:?}"
    );
    assert_eq!(outbox(&app, "tier_changed").await.len(), 1);
}

// ---------------------------------------------------------------- entry points

#[tokio::test]
async fn admins_run_jobs_through_the_staff_api_and_each_run_is_audited() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let today = today(&app);
    let yesterday = days_before(today, 1);

    // No body: today.
    let r = chain
        .admin
        .send(
            reqwest::Method::POST,
            "/api/v1/staff/jobs/points-expiry/run",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["job"], "points-expiry");
    assert_eq!(r.body["date"], today.to_string());
    assert_eq!(r.body["counts"]["lots_expired"], 0);

    // A date.
    let r = chain
        .admin
        .post(
            "/api/v1/staff/jobs/tier-retention/run",
            json!({"date": yesterday}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["date"], yesterday.to_string());
    assert!(r.body["counts"]["reminders_queued"].is_i64(), "{r:?}");

    // The front desk may not.
    let r = chain
        .desk
        .send(
            reqwest::Method::POST,
            "/api/v1/staff/jobs/points-expiry/run",
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.code(), "permission_denied");

    // Unknown jobs, future dates and broken bodies are refused.
    let r = chain
        .admin
        .send(
            reqwest::Method::POST,
            "/api/v1/staff/jobs/clean-everything/run",
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.code(), "unknown_job");
    let r = chain
        .admin
        .post(
            "/api/v1/staff/jobs/points-expiry/run",
            json!({"date": days_after(today, 1)}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.body["error"]["field"], "date");
    let r = chain
        .admin
        .post(
            "/api/v1/staff/jobs/points-expiry/run",
            json!({"date": "yesterday"}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // The two runs are in the audit trail, with what they did.
    let r = chain
        .admin
        .get("/api/v1/staff/audit-log?action=job.run")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{r:?}");
    assert_eq!(items[0]["detail"]["job"], "tier-retention");
    assert_eq!(items[0]["staff_username"], "hq");
    assert_eq!(items[1]["detail"]["job"], "points-expiry");
    assert_eq!(items[1]["detail"]["counts"]["points_expired"], 0);
}

#[tokio::test]
async fn the_command_line_entry_point_lists_runs_and_refuses_like_the_api() {
    let app = spawn_app().await;
    let ctx = JobContext::of(&app.state);
    assert_eq!(
        jobs::JOBS,
        &[
            "points-expiry",
            "points-expiry-reminders",
            "tier-retention",
            "booking-reminders",
            "booking-no-shows",
            "birthday-greetings",
            "recall"
        ]
    );
    for name in jobs::JOBS {
        // Without --date: today.
        let report = jobs::run(&ctx, name, None).await.unwrap();
        assert_eq!(report.job, *name);
        assert_eq!(report.date, today(&app));
        assert!(report.counts.values().all(|n| *n == 0), "{report:?}");
        // What `memberhub jobs run` prints.
        let printed = serde_json::to_value(&report).unwrap();
        assert!(printed["counts"].is_object());
    }
    let err = jobs::run(&ctx, "nope", None).await.unwrap_err();
    assert_eq!(err.code(), "unknown_job");
    let err = jobs::run(&ctx, "points-expiry", Some(days_after(today(&app), 1)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "validation_failed");
    assert_eq!(
        entity::points_entry::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_schedule_runs_each_job_once_a_day_under_a_lease() {
    // A run time already past: the server runs the day's jobs as soon as it starts.
    let app = spawn_app_with(|s| {
        s.jobs.enabled = true;
        s.jobs.run_at = "00:00".into();
    })
    .await;
    let today = today(&app);

    let leased = eventually(Duration::from_secs(20), || async {
        let mut all = true;
        for name in jobs::JOBS {
            let key = format!("job:{name}:{today}");
            all &= app.state.cache.get(&key).await.unwrap().is_some();
        }
        all
    })
    .await;

    assert!(leased, "the scheduler did not lease every job for {today}");
    // A lease lasts beyond the day, so no other instance runs the job again that day.
    let ttl = app
        .state
        .cache
        .ttl(&format!("job:points-expiry:{today}"))
        .await
        .unwrap()
        .unwrap();
    assert!(ttl > Duration::from_secs(24 * 3600), "{ttl:?}");
}
