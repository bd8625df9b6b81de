use std::time::Duration;

use chrono::Utc;
use entity::store;
use memberhub::{app_settings, db};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, Set, Statement};
use serde::{Deserialize, Serialize};

use crate::helpers::{test_database_url, TestDb};

#[tokio::test]
async fn migrations_create_the_store_table_and_rerunning_them_changes_nothing() {
    let test_db = TestDb::new().await;
    let conn = test_db.connect().await;

    assert_eq!(db::migrate(&conn).await.unwrap(), 0);
    let now = Utc::now();
    let saved = store::ActiveModel {
        name: Set("静安旗舰店".into()),
        city: Set(Some("上海".into())),
        address: Set(None),
        phone: Set(Some("021-12345678".into())),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&conn)
    .await
    .unwrap();

    let found = store::Entity::find_by_id(saved.id)
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name, "静安旗舰店");
    assert_eq!(found.city.as_deref(), Some("上海"));
    assert!(found.active);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CheckinRule {
    points: i64,
    zone: String,
}

#[tokio::test]
async fn run_time_settings_are_stored_and_overwritten_by_key() {
    let test_db = TestDb::new().await;
    let conn = test_db.connect().await;

    let missing: Option<CheckinRule> = app_settings::get(&conn, "checkin").await.unwrap();
    assert_eq!(missing, None);

    let rule = CheckinRule {
        points: 10,
        zone: "Asia/Shanghai".into(),
    };
    app_settings::put(&conn, "checkin", &rule).await.unwrap();
    app_settings::put(&conn, "checkin", &CheckinRule { points: 20, ..rule })
        .await
        .unwrap();

    let stored: CheckinRule = app_settings::get(&conn, "checkin").await.unwrap().unwrap();
    assert_eq!(stored.points, 20);
    let rows = entity::setting::Entity::find().all(&conn).await.unwrap();
    assert_eq!(rows.len(), 1);
}

/// Many writers that each read, then write, in one transaction: with BEGIN IMMEDIATE on SQLite
/// they queue for the write lock instead of failing with SQLITE_BUSY on the upgrade; on
/// PostgreSQL row locks do the same. None fails and no increment is lost.
#[tokio::test]
async fn concurrent_write_transactions_all_commit_and_lose_nothing() {
    let test_db = TestDb::new().await;
    let conn = test_db.connect().await;
    conn.execute_unprepared("CREATE TABLE race_counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .await
        .unwrap();
    conn.execute_unprepared("CREATE TABLE race_log (id BIGINT PRIMARY KEY, seen BIGINT NOT NULL)")
        .await
        .unwrap();
    conn.execute_unprepared("INSERT INTO race_counter (id, n) VALUES (1, 0)")
        .await
        .unwrap();
    let backend = conn.get_database_backend();
    let writers = 40;

    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move {
                db::write(&conn, move |txn| {
                    Box::pin(async move {
                        // A read first: this is what turns a deferred SQLite transaction into a
                        // lock upgrade that fails under contention.
                        let before = txn
                            .query_one_raw(Statement::from_string(
                                backend,
                                "SELECT n FROM race_counter WHERE id = 1",
                            ))
                            .await?
                            .ok_or_else(|| DbErr::Custom("no counter".into()))?
                            .try_get::<i64>("", "n")?;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        txn.execute_raw(Statement::from_string(
                            backend,
                            "UPDATE race_counter SET n = n + 1 WHERE id = 1",
                        ))
                        .await?;
                        txn.execute_raw(Statement::from_sql_and_values(
                            backend,
                            match backend {
                                DbBackend::Postgres => {
                                    "INSERT INTO race_log (id, seen) VALUES ($1, $2)"
                                }
                                _ => "INSERT INTO race_log (id, seen) VALUES (?, ?)",
                            },
                            [i64::from(i).into(), before.into()],
                        ))
                        .await?;
                        Ok::<_, DbErr>(())
                    })
                })
                .await
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e.to_string());
        }
    }

    assert!(failures.is_empty(), "writers failed: {failures:?}");
    let n = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT n FROM race_counter WHERE id = 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(n, i64::from(writers));
}

#[tokio::test]
async fn a_failed_write_transaction_rolls_back_everything() {
    let test_db = TestDb::new().await;
    let conn = test_db.connect().await;

    let result: Result<(), DbErr> = db::write(&conn, |txn| {
        Box::pin(async move {
            app_settings::put(txn, "half-done", &1).await?;
            Err(DbErr::Custom("second step failed".into()))
        })
    })
    .await;

    assert!(result.is_err());
    let left: Option<i64> = app_settings::get(&conn, "half-done").await.unwrap();
    assert_eq!(left, None);
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
    if test_database_url().is_some() {
        eprintln!("SQLite-only check; this run is on PostgreSQL");
        return;
    }
    let test_db = TestDb::new().await;
    let conn = test_db.connect().await;
    let pragma = |name: &'static str| {
        let conn = conn.clone();
        async move {
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!("PRAGMA {name}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                .unwrap()
        }
    };

    assert!(pragma("journal_mode").await.contains("wal"));
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("busy_timeout").await, "5000");
}

#[tokio::test]
async fn the_app_applies_migrations_when_it_starts() {
    let app = crate::helpers::spawn_app().await;

    let pending =
        <migration::Migrator as migration::MigratorTrait>::get_pending_migrations(&app.state.db)
            .await
            .unwrap();

    assert!(pending.is_empty());
    assert!(store::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .is_empty());
}
