//! The booking jobs (day-before reminders, no-shows) run twice and do each thing once; the
//! member-day bonus follows the member-day events of the store.

use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use entity::{booking, customer, event_slot, member_event, outbox_message};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use crate::helpers::{chain, member_joined, run_job, spawn_app, Chain, TestApp};

fn business_start(app: &TestApp, date: NaiveDate) -> DateTime<Utc> {
    app.state.settings.loyalty.calendar().start_of(date)
}

fn today(app: &TestApp) -> NaiveDate {
    app.state
        .settings
        .loyalty
        .calendar()
        .date_of(app.state.clock.now())
}

/// A published event of `store` on `date` with one slot 10:00-11:00 business time.
async fn event_on(
    app: &TestApp,
    store: i64,
    date: NaiveDate,
    status: &str,
    points_bonus: bool,
) -> (i64, i64) {
    let now = Utc::now();
    let start = business_start(app, date);
    let e = member_event::ActiveModel {
        store_id: Set(store),
        event_date: Set(date),
        title: Set("十二月会员日".into()),
        description: Set(String::new()),
        opens_at: Set(now - Duration::hours(1)),
        closes_at: Set(start + Duration::hours(9)),
        cancel_deadline: Set(start + Duration::hours(8)),
        min_tier_id: Set(None),
        points_bonus: Set(points_bonus),
        status: Set(status.into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    let s = event_slot::ActiveModel {
        event_id: Set(e.id),
        starts_at: Set(start + Duration::hours(10)),
        ends_at: Set(start + Duration::hours(11)),
        service: Set("皮肤检测".into()),
        capacity: Set(10),
        booked: Set(0),
        status: Set("open".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    (e.id, s.id)
}

async fn member_in(
    app: &TestApp,
    chain: &Chain,
    openid: &str,
    phone: &str,
) -> (crate::helpers::MemberClient, i64) {
    let (m, card) = member_joined(app, openid, phone).await;
    let customer = chain.claim(app, card["member_id"].as_i64().unwrap()).await;
    (m, customer)
}

async fn outbox_count(app: &TestApp, kind: &str) -> u64 {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq(kind))
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_reminder_goes_out_once_per_live_booking_and_a_no_show_is_counted_once() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (a, customer_a) = member_in(&app, &chain, "o-rem-a", "13900001001").await;
    let (b, _) = member_in(&app, &chain, "o-rem-b", "13900001002").await;
    let (c, customer_c) = member_in(&app, &chain, "o-rem-c", "13900001003").await;
    let day = today(&app);
    let tomorrow = day + Days::new(1);
    let (_, slot) = event_on(&app, chain.store, tomorrow, "published", true).await;
    let mut ids = Vec::new();
    for (i, m) in [&a, &b, &c].into_iter().enumerate() {
        let r = m
            .post_keyed(
                "/api/v1/member/bookings",
                &format!("book-{i}"),
                json!({"slot_id": slot}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        ids.push(r.body["booking"]["id"].as_i64().unwrap());
    }
    // B cancels: no reminder for a cancelled booking.
    let r = b
        .post(
            &format!("/api/v1/member/bookings/{}/cancel", ids[1]),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let first = run_job(&app, "booking-reminders", day).await.counts;
    assert_eq!(first["queued"], 2, "{first:?}");
    let again = run_job(&app, "booking-reminders", day).await.counts;
    assert_eq!(again["queued"], 0, "{again:?}");
    assert_eq!(outbox_count(&app, "booking_reminder").await, 2);
    let reminders = outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq("booking_reminder"))
        .all(&app.state.db)
        .await
        .unwrap();
    let mut reminded: Vec<i64> = reminders.iter().map(|m| m.customer_id).collect();
    reminded.sort_unstable();
    let mut expected = vec![customer_a, customer_c];
    expected.sort_unstable();
    assert_eq!(reminded, expected);
    // Sent from 10:00 of the day before, not at the hour the job ran.
    for m in &reminders {
        assert!(m.due_at >= business_start(&app, day) + Duration::hours(10));
        assert!(m.payload.contains("皮肤检测"));
    }

    // Before the slot has ended nothing is a no-show, even run for tomorrow's date later.
    assert_eq!(
        run_job(&app, "booking-no-shows", day).await.counts["marked"],
        0
    );

    // Tomorrow: A is checked in at the desk, C never comes.
    app.state
        .clock
        .pin(business_start(&app, tomorrow) + Duration::hours(10) + Duration::minutes(5));
    booking::Entity::update_many()
        .col_expr(
            booking::Column::Status,
            sea_orm::sea_query::Expr::value("checked_in"),
        )
        .filter(booking::Column::Id.eq(ids[0]))
        .exec(&app.state.db)
        .await
        .unwrap();
    // The slot is still running: not yet a no-show.
    assert_eq!(
        run_job(&app, "booking-no-shows", tomorrow).await.counts["marked"],
        0
    );
    app.state.clock.advance(Duration::hours(1));
    let marked = run_job(&app, "booking-no-shows", tomorrow).await.counts;
    assert_eq!(marked["marked"], 1, "{marked:?}");
    assert_eq!(
        run_job(&app, "booking-no-shows", tomorrow).await.counts["marked"],
        0
    );

    let c_booking = booking::Entity::find_by_id(ids[2])
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c_booking.status, "no_show");
    assert!(c_booking.no_show_at.is_some());
    let no_shows = |id| {
        let db = app.state.db.clone();
        async move {
            customer::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .no_show_count
        }
    };
    assert_eq!(no_shows(customer_c).await, 1);
    assert_eq!(no_shows(customer_a).await, 0);
    // The member sees it in their bookings and cannot cancel it any more.
    let mine = c.get("/api/v1/member/bookings").await;
    assert_eq!(mine.body["items"][0]["status"], "no_show");
    assert_eq!(mine.body["items"][0]["cancellable"], false);
    let r = c
        .post(
            &format!("/api/v1/member/bookings/{}/cancel", ids[2]),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
}

#[tokio::test]
async fn booking_jobs_are_listed_and_refuse_a_future_date_by_the_server_clock() {
    let app = spawn_app().await;
    let admin = chain(&app).await.admin;
    let tomorrow = today(&app) + Days::new(1);
    let r = admin
        .post(
            "/api/v1/staff/jobs/booking-no-shows/run",
            json!({"date": tomorrow}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"]["field"], "date");
    // Once the server's clock is there, it runs.
    app.state
        .clock
        .pin(business_start(&app, tomorrow) + Duration::hours(12));
    let r = admin
        .post(
            "/api/v1/staff/jobs/booking-reminders/run",
            json!({"date": tomorrow}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["counts"], json!({"failed": 0, "queued": 0}));
}

#[tokio::test]
async fn consumption_on_a_member_day_of_the_store_earns_the_member_day_bonus() {
    let app = spawn_app().await;
    let chain = chain(&app).await;
    let (_, customer) = member_in(&app, &chain, "o-bonus-day", "13900001011").await;
    let day = today(&app);
    // A draft, and an event without the bonus, earn nothing extra.
    event_on(&app, chain.store, day, "draft", true).await;
    event_on(&app, chain.store, day, "published", false).await;
    let r = chain.consume(customer, "MD-1", 10_000).await;
    assert_eq!(r["consumption"]["bonus"], serde_json::Value::Null, "{r}");
    assert_eq!(r["consumption"]["points_earned"], 100);
    // Another store's member day is not this store's, nor the member's.
    let other = crate::helpers::create_store(&app, "徐汇店").await;
    event_on(&app, other, day, "published", true).await;
    let r = chain.consume(customer, "MD-2", 10_000).await;
    assert_eq!(r["consumption"]["bonus"], serde_json::Value::Null, "{r}");
    // The store's own published member day with the bonus: x2 (the default multiplier).
    event_on(&app, chain.store, day, "published", true).await;
    let r = chain.consume(customer, "MD-3", 10_000).await;
    assert_eq!(r["consumption"]["bonus"], "member_day", "{r}");
    assert_eq!(
        r["consumption"]["points_earned"],
        100 * app.state.settings.loyalty.member_day_multiplier_pct / 100
    );
    crate::helpers::assert_ledger_consistent(&app).await;
}
