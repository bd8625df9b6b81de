//! The demo chain (`memberhub demo`): what a newcomer is promised to see, loaded through the
//! real loyalty code, and never loaded over existing data.

use std::collections::HashSet;
use std::time::Instant;

use memberhub::loyalty::calendar::Calendar;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{spawn_app, Reply, TestApp};

#[derive(Debug, PartialEq, Eq)]
struct Counts {
    stores: u64,
    staff: u64,
    customers: u64,
    members: u64,
    consumptions: u64,
    refunds: u64,
    lots: u64,
    rewards: u64,
}

async fn counts(db: &DatabaseConnection) -> Counts {
    Counts {
        stores: entity::store::Entity::find().count(db).await.unwrap(),
        staff: entity::staff::Entity::find().count(db).await.unwrap(),
        customers: entity::customer::Entity::find().count(db).await.unwrap(),
        members: entity::member::Entity::find().count(db).await.unwrap(),
        consumptions: entity::consumption::Entity::find().count(db).await.unwrap(),
        refunds: entity::consumption_refund::Entity::find()
            .count(db)
            .await
            .unwrap(),
        lots: entity::points_lot::Entity::find().count(db).await.unwrap(),
        rewards: entity::reward::Entity::find().count(db).await.unwrap(),
    }
}

/// The password the report printed for `username` (the last word of its line).
fn password_in(report: &str, username: &str) -> String {
    report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(username))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no line for {username} in the report:\n{report}"))
        .to_string()
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> Reply {
    Reply::of(
        app.client
            .post(app.url("/api/v1/staff/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password, "session": "bearer"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn demo_loads_a_living_chain_once() {
    let app = spawn_app().await;
    let db = &app.state.db;

    let started = Instant::now();
    let report = memberhub::demo::load(db, &app.state.cache, &app.state.settings)
        .await
        .unwrap()
        .expect("an empty database gets the demo chain");
    eprintln!(
        "demo load took {:.1} s\n{report}",
        started.elapsed().as_secs_f64()
    );

    let loaded = counts(db).await;
    assert_eq!(loaded.stores, 3, "{loaded:?}");
    assert!(loaded.staff >= 10, "{loaded:?}");
    assert_eq!(loaded.customers, 200, "{loaded:?}");
    assert!((100..=140).contains(&loaded.members), "{loaded:?}");
    assert!(loaded.consumptions >= 300, "a year of visits: {loaded:?}");
    assert!(loaded.refunds > 0, "{loaded:?}");
    assert!((4..=6).contains(&loaded.rewards), "{loaded:?}");

    // Every tier of the table has members, as earned by spend through `record`.
    let tiers: HashSet<i64> = entity::tier::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let held: HashSet<i64> = entity::member::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.tier_id)
        .collect();
    assert_eq!(held, tiers, "members on every tier");

    // Points earned 11-12 months ago are about to expire: the card has something to warn of.
    let today = Calendar::new(app.state.settings.loyalty.tz()).today();
    let expiring = entity::points_lot::Entity::find()
        .filter(entity::points_lot::Column::ExpiredAt.is_null())
        .filter(entity::points_lot::Column::Remaining.gt(0))
        .filter(entity::points_lot::Column::ExpiresOn.gte(today))
        .filter(entity::points_lot::Column::ExpiresOn.lte(today + chrono::Days::new(30)))
        .count(db)
        .await
        .unwrap();
    assert!(expiring > 0, "no live lot expires within 30 days");

    let bad = memberhub::loyalty::ledger::invariant_violations(db)
        .await
        .unwrap();
    assert!(bad.is_empty(), "balance != sum of live lots: {bad:?}");

    // The printed passwords work over HTTP, for the chain and for a store.
    for username in ["demo-admin", "jingan-frontdesk"] {
        let password = password_in(&report, username);
        let r = sign_in(&app, username, &password).await;
        assert_eq!(r.status, 200, "{username}: {r:?}");
        assert!(
            r.body["token"].as_str().is_some_and(|t| !t.is_empty()),
            "{r:?}"
        );
    }
    let admin = sign_in(&app, "demo-admin", &password_in(&report, "demo-admin")).await;
    let token = admin.body["token"].as_str().unwrap();
    let r = Reply::of(
        app.client
            .get(app.url("/api/v1/staff/customers?limit=5"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    // A second load leaves the chain alone.
    let again = memberhub::demo::load(db, &app.state.cache, &app.state.settings)
        .await
        .unwrap();
    assert!(again.is_none(), "loaded twice: {again:?}");
    assert_eq!(counts(db).await, loaded);
}
