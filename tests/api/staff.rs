//! Staff sign-in and administration: the console cookie and its CSRF token, bearer sessions,
//! logout, idle and absolute expiry, throttling and lockout, stores and accounts, the audit
//! log, and the first admin created from the shell.

use std::time::Duration;

use entity::{audit_log, staff_session};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{
    create_staff, create_store, eventually, spawn_app, spawn_app_on, spawn_app_with, staff_login,
    staff_login_bearer, staff_login_raw, Reply, TestApp, TestDb, STAFF_PASSWORD,
};

async fn audit_count(app: &TestApp, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_console_cookie_is_httponly_strict_and_carries_no_token_in_the_body() {
    let app = spawn_app().await;
    create_staff(&app, "hq", "admin", None).await;
    let reply = staff_login_raw(&app, "HQ", STAFF_PASSWORD).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let cookie = reply.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("mh_staff_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http by default: {cookie}"
    );
    assert!(reply.body["csrf_token"].as_str().unwrap().len() >= 32);
    assert!(reply.body["token"].is_null());
    assert_eq!(reply.body["staff"]["role"], "admin");
    assert_eq!(reply.body["staff"]["username"], "hq");

    let secure = spawn_app_with(|s| s.staff.cookie_secure = true).await;
    create_staff(&secure, "hq", "admin", None).await;
    let reply = staff_login_raw(&secure, "hq", STAFF_PASSWORD).await;
    assert!(reply.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

#[tokio::test]
async fn a_cookie_request_that_changes_state_without_the_csrf_token_is_refused_and_changes_nothing()
{
    let app = spawn_app().await;
    let store = create_store(&app, "静安店").await;
    create_staff(&app, "desk", "front_desk", Some(store)).await;
    let desk = staff_login(&app, "desk").await;
    let new_customer = json!({"name": "王小美", "phone": "13900001111"});

    // Reads need no token.
    assert_eq!(
        desk.without_csrf()
            .get("/api/v1/staff/auth/me")
            .await
            .status,
        200
    );
    let forged = desk
        .without_csrf()
        .post("/api/v1/staff/customers", new_customer.clone())
        .await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(forged.code(), "csrf_token_invalid");
    let mut wrong = desk.clone();
    wrong.csrf = Some("not-the-token".into());
    let forged = wrong
        .post("/api/v1/staff/customers", new_customer.clone())
        .await;
    assert_eq!(forged.code(), "csrf_token_invalid");
    let logout = desk
        .without_csrf()
        .post("/api/v1/staff/auth/logout", json!({}))
        .await;
    assert_eq!(logout.code(), "csrf_token_invalid");
    let count = entity::customer::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "a refused request created a customer");

    let created = desk.post("/api/v1/staff/customers", new_customer).await;
    assert_eq!(created.status, 201, "{created:?}");
    // Another session's token does not fit this one.
    let other = staff_login(&app, "desk").await;
    let mut crossed = desk.clone();
    crossed.csrf = other.csrf.clone();
    let refused = crossed
        .patch(
            &format!("/api/v1/staff/customers/{}", created.body["id"]),
            json!({"name": "王大美"}),
        )
        .await;
    assert_eq!(refused.code(), "csrf_token_invalid");
}

#[tokio::test]
async fn scripts_use_a_bearer_token_that_needs_no_csrf_and_is_not_a_cookie() {
    let app = spawn_app().await;
    create_staff(&app, "hq", "admin", None).await;
    let script = staff_login_bearer(&app, "hq").await;
    let store = script
        .post(
            "/api/v1/staff/stores",
            json!({"name": "徐汇店", "city": "上海"}),
        )
        .await;
    assert_eq!(store.status, 201, "{store:?}");

    // The same token presented as a cookie is not a session.
    let token = script.bearer.clone().unwrap();
    let as_cookie = app
        .client
        .get(app.url("/api/v1/staff/auth/me"))
        .header("cookie", format!("mh_staff_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_cookie.status(), 401);
    // And a console cookie's value is not a bearer token.
    let console = staff_login(&app, "hq").await;
    let value = console.cookie.clone().unwrap();
    let value = value.trim_start_matches("mh_staff_session=");
    let as_bearer = app
        .client
        .get(app.url("/api/v1/staff/auth/me"))
        .bearer_auth(value)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), 401);
    assert_eq!(app.get("/api/v1/staff/auth/me").await.status(), 401);
}

#[tokio::test]
async fn logout_revokes_only_that_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    create_staff(&app, "hq", "admin", None).await;
    let first = staff_login(&app, "hq").await;
    let second = staff_login(&app, "hq").await;
    let out = first.post("/api/v1/staff/auth/logout", json!({})).await;
    assert_eq!(out.status, 204, "{out:?}");
    let cleared = out.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(first.get("/api/v1/staff/auth/me").await.status, 401);
    assert_eq!(second.get("/api/v1/staff/auth/me").await.status, 200);
    assert_eq!(audit_count(&app, "staff.logout").await, 1);
}

#[tokio::test]
async fn an_idle_session_ends_and_a_busy_one_still_ends_at_its_absolute_limit() {
    let idle = spawn_app_with(|s| {
        s.staff.session_idle_secs = 1;
        s.staff.session_absolute_secs = 3600;
    })
    .await;
    create_staff(&idle, "hq", "admin", None).await;
    let s = staff_login(&idle, "hq").await;
    assert_eq!(s.get("/api/v1/staff/auth/me").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let expired = s.get("/api/v1/staff/auth/me").await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code(), "session_expired");

    let absolute = spawn_app_with(|s| {
        s.staff.session_idle_secs = 3600;
        s.staff.session_absolute_secs = 2;
    })
    .await;
    create_staff(&absolute, "hq", "admin", None).await;
    let s = staff_login(&absolute, "hq").await;
    let ended = eventually(Duration::from_secs(5), || async {
        s.get("/api/v1/staff/auth/me").await.status == 401
    })
    .await;
    assert!(ended, "a session outlived its absolute limit");
    let revoked = staff_session::Entity::find()
        .filter(staff_session::Column::RevokedAt.is_not_null())
        .count(&absolute.state.db)
        .await
        .unwrap();
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_username_even_against_the_right_one_until_the_lock_ends() {
    let app = spawn_app_with(|s| s.staff.lockout_secs = 2).await;
    create_staff(&app, "hq", "admin", None).await;
    create_staff(&app, "other", "admin", None).await;
    for attempt in 1..=9u64 {
        let r = staff_login_raw(&app, "hq", "Wrong-Password-1").await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.code(), "invalid_credentials");
        assert_eq!(r.body["error"]["remaining_attempts"], 10 - attempt);
    }
    let tenth = staff_login_raw(&app, "hq", "Wrong-Password-1").await;
    assert_eq!(tenth.status, 429, "{tenth:?}");
    assert_eq!(tenth.code(), "login_locked");

    let right = staff_login_raw(&app, "hq", STAFF_PASSWORD).await;
    assert_eq!(
        right.status, 429,
        "the right password got in during the lock"
    );
    assert_eq!(right.code(), "login_locked");
    assert!(right.body["error"]["retry_after_secs"].as_u64().unwrap() >= 1);
    assert!(right.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("分钟"));
    // The lock is the username's: a colleague at the same desk still signs in.
    assert_eq!(
        staff_login_raw(&app, "other", STAFF_PASSWORD).await.status,
        200
    );
    assert_eq!(audit_count(&app, "staff.login_locked").await, 1);
    assert_eq!(audit_count(&app, "staff.login_failed").await, 10);

    let unlocked = eventually(Duration::from_secs(6), || async {
        staff_login_raw(&app, "hq", STAFF_PASSWORD).await.status == 200
    })
    .await;
    assert!(unlocked, "the lock did not end by itself");
}

#[tokio::test]
async fn unknown_usernames_count_too_and_one_ip_guessing_many_names_is_locked() {
    let app = spawn_app_with(|s| {
        s.staff.max_failures_per_ip = 5;
        s.staff.lockout_secs = 60;
    })
    .await;
    create_staff(&app, "hq", "admin", None).await;
    for i in 0..4 {
        let r = staff_login_raw(&app, &format!("guess{i}"), "Wrong-Password-1").await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let fifth = staff_login_raw(&app, "guess9", "Wrong-Password-1").await;
    assert_eq!(fifth.code(), "login_locked");
    let real = staff_login_raw(&app, "hq", STAFF_PASSWORD).await;
    assert_eq!(real.status, 429, "{real:?}");
}

#[tokio::test]
async fn bad_login_bodies_are_named_and_inactive_accounts_and_stores_stay_out() {
    let app = spawn_app().await;
    let store = create_store(&app, "静安店").await;
    create_staff(&app, "hq", "admin", None).await;
    let manager = create_staff(&app, "mgr", "manager", Some(store)).await;
    let r = staff_login_raw(&app, "", "x").await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("username"))
    );
    let r = Reply::of(
        app.client
            .post(app.url("/api/v1/staff/auth/login"))
            .json(&json!({"username": "hq", "password": "x", "remember": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");

    let admin = staff_login(&app, "hq").await;
    let mgr = staff_login(&app, "mgr").await;
    let closed = admin
        .patch(
            &format!("/api/v1/staff/stores/{store}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(closed.status, 200, "{closed:?}");
    assert_eq!(mgr.get("/api/v1/staff/auth/me").await.status, 401);
    let r = staff_login_raw(&app, "mgr", STAFF_PASSWORD).await;
    assert_eq!((r.status, r.code()), (403, "account_disabled"));

    admin
        .patch(
            &format!("/api/v1/staff/stores/{store}"),
            json!({"active": true}),
        )
        .await;
    let mgr = staff_login(&app, "mgr").await;
    let off = admin
        .patch(
            &format!("/api/v1/staff/accounts/{manager}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{off:?}");
    assert_eq!(mgr.get("/api/v1/staff/auth/me").await.status, 401);
    let r = staff_login_raw(&app, "mgr", STAFF_PASSWORD).await;
    assert_eq!(r.code(), "account_disabled");
    // A wrong password never tells that the account exists but is disabled.
    let r = staff_login_raw(&app, "mgr", "Wrong-Password-1").await;
    assert_eq!(r.code(), "invalid_credentials");
}

#[tokio::test]
async fn admins_manage_stores_and_accounts_and_nobody_else_does() {
    let app = spawn_app().await;
    create_staff(&app, "hq", "admin", None).await;
    let admin = staff_login(&app, "hq").await;

    let store = admin
        .post(
            "/api/v1/staff/stores",
            json!({"name": "  ", "city": "上海"}),
        )
        .await;
    assert_eq!(
        (store.status, store.body["error"]["field"].as_str()),
        (400, Some("name"))
    );
    let store = admin
        .post(
            "/api/v1/staff/stores",
            json!({"name": "静安店", "city": "上海", "phone": "021-5555"}),
        )
        .await;
    assert_eq!(store.status, 201, "{store:?}");
    let store_id = store.body["id"].as_i64().unwrap();

    // A manager without a store, an admin with one: refused, naming the field.
    let bad = admin
        .post(
            "/api/v1/staff/accounts",
            json!({"username": "li.na", "display_name": "李娜", "role": "manager"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (400, Some("store_id"))
    );
    let weak = admin
        .post("/api/v1/staff/accounts", json!({"username": "li.na", "display_name": "李娜", "role": "manager", "store_id": store_id, "password": "password"}))
        .await;
    assert_eq!(
        (weak.status, weak.body["error"]["field"].as_str()),
        (400, Some("password"))
    );
    let made = admin
        .post("/api/v1/staff/accounts", json!({"username": "Li.Na", "display_name": "李娜", "role": "manager", "store_id": store_id}))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let password = made.body["password"].as_str().unwrap().to_string();
    assert_eq!(made.body["account"]["username"], "li.na");
    let twin = admin
        .post("/api/v1/staff/accounts", json!({"username": "li.na", "display_name": "李娜", "role": "consultant", "store_id": store_id}))
        .await;
    assert_eq!((twin.status, twin.code()), (409, "username_taken"));
    let login = staff_login_raw(&app, "li.na", &password).await;
    assert_eq!(login.status, 200, "{login:?}");
    let mgr = staff_login_bearer_with(&app, "li.na", &password).await;

    // The manager: reads their store's accounts, manages nothing.
    create_staff(&app, "elsewhere", "admin", None).await;
    let seen = mgr.get("/api/v1/staff/accounts").await;
    assert_eq!(seen.status, 200);
    let names: Vec<&str> = seen
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["li.na"]);
    for reply in [
        mgr.post("/api/v1/staff/stores", json!({"name": "X"})).await,
        mgr.patch(&format!("/api/v1/staff/stores/{store_id}"), json!({"name": "X"})).await,
        mgr.post("/api/v1/staff/accounts", json!({"username": "x.y", "display_name": "X", "role": "front_desk", "store_id": store_id})).await,
        mgr.post("/api/v1/staff/accounts/1/reset-password", json!({})).await,
        mgr.get("/api/v1/staff/audit-log").await,
    ] {
        assert_eq!((reply.status, reply.code()), (403, "permission_denied"), "{reply:?}");
    }
    assert_eq!(mgr.get("/api/v1/staff/stores").await.status, 200);

    // A reset ends the account's sessions and the old password.
    let id = made.body["account"]["id"].as_i64().unwrap();
    let reset = admin
        .post(
            &format!("/api/v1/staff/accounts/{id}/reset-password"),
            json!({}),
        )
        .await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(mgr.get("/api/v1/staff/auth/me").await.status, 401);
    assert_eq!(staff_login_raw(&app, "li.na", &password).await.status, 401);
    let new_password = reset.body["password"].as_str().unwrap();
    assert_eq!(
        staff_login_raw(&app, "li.na", new_password).await.status,
        200
    );

    // The last admin cannot lock themselves out.
    let me = admin.get("/api/v1/staff/auth/me").await.body["id"]
        .as_i64()
        .unwrap();
    let selfish = admin
        .patch(
            &format!("/api/v1/staff/accounts/{me}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(
        (selfish.status, selfish.code()),
        (409, "cannot_change_self")
    );
}

async fn staff_login_bearer_with(
    app: &TestApp,
    username: &str,
    password: &str,
) -> crate::helpers::StaffClient {
    let reply = Reply::of(
        app.client
            .post(app.url("/api/v1/staff/auth/login"))
            .json(&json!({"username": username, "password": password, "session": "bearer"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    crate::helpers::StaffClient {
        client: app.client.clone(),
        base: app.address.clone(),
        cookie: None,
        csrf: None,
        bearer: Some(reply.body["token"].as_str().unwrap().to_string()),
    }
}

#[tokio::test]
async fn changing_my_password_checks_the_old_one_and_ends_my_other_sessions() {
    let app = spawn_app().await;
    create_staff(&app, "hq", "admin", None).await;
    let here = staff_login(&app, "hq").await;
    let there = staff_login_bearer(&app, "hq").await;
    let wrong = here
        .post(
            "/api/v1/staff/auth/password",
            json!({"current_password": "nope", "new_password": "Brand-New-Pass-1"}),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let weak = here
        .post(
            "/api/v1/staff/auth/password",
            json!({"current_password": STAFF_PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(
        (weak.status, weak.body["error"]["field"].as_str()),
        (400, Some("new_password"))
    );
    let ok = here
        .post(
            "/api/v1/staff/auth/password",
            json!({"current_password": STAFF_PASSWORD, "new_password": "Brand-New-Pass-1"}),
        )
        .await;
    assert_eq!(ok.status, 204, "{ok:?}");
    assert_eq!(here.get("/api/v1/staff/auth/me").await.status, 200);
    assert_eq!(there.get("/api/v1/staff/auth/me").await.status, 401);
    assert_eq!(
        staff_login_raw(&app, "hq", "Brand-New-Pass-1").await.status,
        200
    );
}

#[tokio::test]
async fn the_audit_log_is_for_admins_filters_and_cannot_be_rewritten() {
    let app = spawn_app().await;
    let store = create_store(&app, "静安店").await;
    create_staff(&app, "hq", "admin", None).await;
    let desk_id = create_staff(&app, "desk", "front_desk", Some(store)).await;
    let admin = staff_login(&app, "hq").await;
    let desk = staff_login(&app, "desk").await;
    let c = desk
        .post(
            "/api/v1/staff/customers",
            json!({"name": "王小美", "phone": "13900001111"}),
        )
        .await;
    let cid = c.body["id"].as_i64().unwrap();
    desk.get(&format!("/api/v1/staff/customers/{cid}")).await;
    admin.get(&format!("/api/v1/staff/customers/{cid}")).await;

    let by_desk = admin
        .get(&format!(
            "/api/v1/staff/audit-log?staff_id={desk_id}&target_type=customer&target_id={cid}"
        ))
        .await;
    assert_eq!(by_desk.status, 200, "{by_desk:?}");
    let actions: Vec<&str> = by_desk.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["customer.view", "customer.create"]);
    let entry = &by_desk.body["items"][0];
    assert_eq!(entry["staff_username"], "desk");
    assert_eq!(entry["store_id"], store);
    assert_eq!(entry["ip"], "127.0.0.1");
    assert!(entry["at"].as_str().is_some());

    let views = admin
        .get("/api/v1/staff/audit-log?action=customer.view&limit=1")
        .await;
    assert_eq!(views.body["items"].as_array().unwrap().len(), 1);
    let cursor = views.body["next_cursor"].as_i64().unwrap();
    let next = admin
        .get(&format!(
            "/api/v1/staff/audit-log?action=customer.view&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(next.body["items"].as_array().unwrap().len(), 1);
    assert!(next.body["next_cursor"].is_null());
    let bad = admin.get("/api/v1/staff/audit-log?limit=0").await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (400, Some("limit"))
    );
    assert_eq!(
        desk.get("/api/v1/staff/audit-log").await.code(),
        "permission_denied"
    );

    let before = audit_log::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    let rewrite = app
        .state
        .db
        .execute_unprepared("UPDATE audit_log SET action = 'nothing'")
        .await;
    assert!(rewrite.is_err(), "the audit log accepted an UPDATE");
    let erase = app
        .state
        .db
        .execute_unprepared("DELETE FROM audit_log")
        .await;
    assert!(erase.is_err(), "the audit log accepted a DELETE");
    if app.state.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let truncate = app.state.db.execute_unprepared("TRUNCATE audit_log").await;
        assert!(truncate.is_err(), "the audit log accepted a TRUNCATE");
    }
    assert_eq!(
        audit_log::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        before
    );
}

#[tokio::test]
async fn the_first_admin_is_created_from_the_shell_on_a_fresh_installation() {
    use secrecy::ExposeSecret;
    let db = TestDb::new().await;
    let url = db.settings.url.expose_secret().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memberhub"))
        .args(["staff", "create", "--username", "Boss", "--role", "admin"])
        .env("MEMBERHUB_DATABASE__URL", &url)
        .env("MEMBERHUB_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("no password printed")
        .to_string();

    // A weak password from a script is refused, naming the rule.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_memberhub"))
        .args([
            "staff",
            "create",
            "--username",
            "script",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .env("MEMBERHUB_DATABASE__URL", &url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"password\n")
            .unwrap();
    }
    let weak = child.wait_with_output().unwrap();
    assert!(!weak.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&weak.stdout),
        String::from_utf8_lossy(&weak.stderr)
    );
    assert!(said.contains("validation_failed"), "{said}");

    let app = spawn_app_on(db, |_| {}).await;
    let r = staff_login_raw(&app, "boss", &password).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["staff"]["role"], "admin");
    assert!(r.body["staff"]["store_id"].is_null());
}

#[tokio::test]
async fn wrong_passwords_fired_at_once_still_lock_and_none_slips_through() {
    let app = spawn_app_with(|s| s.staff.lockout_secs = 60).await;
    create_staff(&app, "hq", "admin", None).await;
    // Thirty guesses at once, the right password hidden among them after the tenth wrong one
    // cannot be told apart by the server: the counter is one atomic increment in the cache.
    let guesses = (0..30).map(|_| {
        let app = &app;
        async move { staff_login_raw(app, "hq", "Wrong-Password-1").await }
    });
    let replies = futures_util::future::join_all(guesses).await;
    assert!(
        replies.iter().all(|r| matches!(r.status, 401 | 429)),
        "{replies:?}"
    );
    let wrong = replies.iter().filter(|r| r.status == 401).count();
    assert!(
        wrong <= 9,
        "{wrong} wrong passwords were answered without a lock"
    );
    let right = staff_login_raw(&app, "hq", STAFF_PASSWORD).await;
    assert_eq!(right.code(), "login_locked");
}
