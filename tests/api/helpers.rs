//! Spawns the real application for a test: a random port, a database of its own (a SQLite file in
//! a temporary folder, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set) and the
//! in-process cache (or Redis under a unique key prefix when `TEST_REDIS_URL` is set).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use memberhub::cache::Cache;
use memberhub::config::{DatabaseSettings, RedisSettings, Settings};
use memberhub::startup::Application;
use memberhub::state::AppState;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = memberhub::telemetry::init(&Default::default());
    }
});

/// Tests reach nothing but this machine.
fn assert_local(url: &str, var: &str) {
    let host_part = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.rsplit('@').next())
        .unwrap_or("");
    assert!(
        host_part.starts_with("127.0.0.1") || host_part.starts_with("localhost"),
        "{var} must point at 127.0.0.1, got {host_part}"
    );
}

pub fn test_database_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

pub fn test_redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database of the test's own, migrated by the app at start (or by `TestDb::connect`).
pub struct TestDb {
    pub settings: DatabaseSettings,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new() -> Self {
        let mut settings = DatabaseSettings {
            max_connections: 5,
            ..Default::default()
        };
        match test_database_url() {
            Some(admin_url) => {
                assert_local(&admin_url, "TEST_DATABASE_URL");
                let name = format!("memberhub_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL does not answer");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("cannot create the test database");
                admin.close().await.ok();
                let base = admin_url
                    .split('?')
                    .next()
                    .and_then(|u| u.rsplit_once('/'))
                    .map(|(base, _)| base.to_string())
                    .expect("TEST_DATABASE_URL needs a /database part");
                settings.url = SecretString::from(format!("{base}/{name}"));
                Self {
                    settings,
                    _dir: None,
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("no temp dir");
                let path = dir.path().join("test.db");
                settings.url = SecretString::from(format!("sqlite://{}", path.display()));
                Self {
                    settings,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// A migrated connection to this database.
    pub async fn connect(&self) -> DatabaseConnection {
        let db = memberhub::db::connect(&self.settings)
            .await
            .expect("cannot connect to the test database");
        memberhub::db::migrate(&db)
            .await
            .expect("migrations failed");
        db
    }
}

pub fn test_redis_settings() -> RedisSettings {
    let url = test_redis_url();
    if let Some(url) = &url {
        assert_local(url, "TEST_REDIS_URL");
    }
    RedisSettings {
        url: url.map(SecretString::from),
        key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        timeout_ms: 1_000,
    }
}

/// The cache the suite runs against: Redis when `TEST_REDIS_URL` is set, else in-process.
pub async fn test_cache() -> Cache {
    Cache::connect(&test_redis_settings())
        .await
        .expect("TEST_REDIS_URL does not answer")
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    pub handle: ServerHandle,
    _db: TestDb,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }
}

fn base_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.server.workers = Some(1);
    settings.server.shutdown_timeout_secs = 5;
    settings.database = db.settings.clone();
    settings.redis = test_redis_settings();
    // Tests run jobs when they mean to; a schedule firing mid-test would be a surprise.
    settings.jobs.enabled = false;
    settings.messaging.enabled = false;
    // Member days and bonuses depend on the date; tests that want them set them.
    settings.loyalty.member_days = vec![];
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after letting the test change its settings. The listener is bound before
/// this returns, so the app answers at once: no sleeping.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb::new().await, customise).await
}

/// Spawns the app on a database the test prepared (e.g. with the command line).
pub async fn spawn_app_on(db: TestDb, customise: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let mut settings = base_settings(&db);
    customise(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the app did not build");
    launch(app, db)
}

/// Spawns the app around a database and cache the test built itself (e.g. broken ones).
pub async fn spawn_app_around(db: DatabaseConnection, cache: Cache) -> TestApp {
    LazyLock::force(&TRACING);
    let test_db = TestDb::new().await;
    let settings = base_settings(&test_db);
    let app = Application::build_with(settings, db, cache).expect("the app did not build");
    launch(app, test_db)
}

fn launch(app: Application, db: TestDb) -> TestApp {
    let port = app.port();
    let state = app.state().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("no HTTP client"),
        state,
        handle,
        _db: db,
    }
}

/// A TCP proxy in front of a real service that can be cut (every connection dropped, new ones
/// refused by closing them at once) and restored, to play an outage without stopping the
/// service other tests share.
pub struct FlakyProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl FlakyProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let up = up.clone();
            let links = links.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().expect("poisoned").push(link);
                }
            })
        };
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("poisoned").drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Polls `probe` until it returns true or `within` passes. For conditions that settle in the
/// background (a reconnect), never for startup.
pub async fn eventually<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if probe().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stand-in Redis that answers every command with +OK, except PING, which it answers after
/// `delay`: it keeps a `/readyz` request in flight for as long as a test needs.
pub async fn slow_redis(delay: Duration) -> SocketAddr {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                // Commands arrive as RESP arrays: *N, then N pairs of $len and the argument.
                while let Ok(Some(header)) = lines.next_line().await {
                    let Some(n) = header
                        .strip_prefix('*')
                        .and_then(|n| n.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let mut args = Vec::with_capacity(n);
                    for _ in 0..n {
                        let _len = lines.next_line().await;
                        if let Ok(Some(arg)) = lines.next_line().await {
                            args.push(arg);
                        }
                    }
                    let reply: &[u8] =
                        if args.first().is_some_and(|c| c.eq_ignore_ascii_case("PING")) {
                            tokio::time::sleep(delay).await;
                            b"+PONG\r\n"
                        } else {
                            b"+OK\r\n"
                        };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- staff

/// A store, written straight to the database (what an admin would create).
pub async fn create_store(app: &TestApp, name: &str) -> i64 {
    use sea_orm::{ActiveModelTrait, Set};
    let now = chrono::Utc::now();
    entity::store::ActiveModel {
        name: Set(name.to_string()),
        city: Set(Some("上海".into())),
        address: Set(None),
        phone: Set(None),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("cannot create a store")
    .id
}

pub const STAFF_PASSWORD: &str = "Clinic-Pass-2026";

/// A staff account with [`STAFF_PASSWORD`], created as the command line does; returns its id.
pub async fn create_staff(app: &TestApp, username: &str, role: &str, store: Option<i64>) -> i64 {
    use memberhub::auth::staff::Role;
    use memberhub::staff::accounts::{create_account, NewAccount, Username};
    let (account, _) = create_account(
        &app.state.db,
        NewAccount {
            username: Username::parse(username).expect("bad username"),
            display_name: format!("{username} 老师"),
            role: Role::parse(role).expect("bad role"),
            store_id: store,
            password: Some(STAFF_PASSWORD.to_string()),
        },
        None,
    )
    .await
    .expect("cannot create a staff account");
    account.id
}

/// A signed-in member of staff: the console's cookie and CSRF token, or a script's bearer.
#[derive(Clone)]
pub struct StaffClient {
    pub client: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
}

/// The status and the JSON body (Null when there is none), plus the raw text for leak checks.
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

impl Reply {
    pub async fn of(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Self {
            status,
            body,
            text,
            headers,
        }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn staff_login_raw(app: &TestApp, username: &str, password: &str) -> Reply {
    Reply::of(
        app.client
            .post(app.url("/api/v1/staff/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("request failed"),
    )
    .await
}

/// Signs in with the console cookie.
pub async fn staff_login(app: &TestApp, username: &str) -> StaffClient {
    let reply = staff_login_raw(app, username, STAFF_PASSWORD).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let cookie = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mh_staff_session="))
        .and_then(|v| v.split(';').next())
        .expect("no session cookie")
        .to_string();
    StaffClient {
        client: app.client.clone(),
        base: app.address.clone(),
        cookie: Some(cookie),
        csrf: reply.body["csrf_token"].as_str().map(str::to_string),
        bearer: None,
    }
}

/// Signs in for a script: a bearer token, no cookie.
pub async fn staff_login_bearer(app: &TestApp, username: &str) -> StaffClient {
    let reply = Reply::of(
        app.client
            .post(app.url("/api/v1/staff/auth/login"))
            .json(&serde_json::json!({"username": username, "password": STAFF_PASSWORD, "session": "bearer"}))
            .send()
            .await
            .expect("request failed"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    StaffClient {
        client: app.client.clone(),
        base: app.address.clone(),
        cookie: None,
        csrf: None,
        bearer: Some(reply.body["token"].as_str().expect("no token").to_string()),
    }
}

impl StaffClient {
    /// The same session without its CSRF token (a forged cross-site request).
    pub fn without_csrf(&self) -> Self {
        Self {
            csrf: None,
            ..self.clone()
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::of(req.send().await.expect("request failed")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }
}

impl StaffClient {
    pub async fn put(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// A POST with an `Idempotency-Key`.
    pub async fn post_keyed(&self, path: &str, key: &str, body: serde_json::Value) -> Reply {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("idempotency-key", key)
            .json(&body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        Reply::of(req.send().await.expect("request failed")).await
    }
}

// ---------------------------------------------------------------- members

/// A member in the mini-program: the bearer token from a sandbox login.
#[derive(Clone)]
pub struct MemberClient {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl MemberClient {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::of(req.send().await.expect("request failed")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::POST, path, None, Some(body))
            .await
    }

    pub async fn post_keyed(&self, path: &str, key: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(key), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, None, Some(body))
            .await
    }
}

/// Logs a member in through the sandbox (a fresh wx.login code for `openid`).
pub async fn member_login(app: &TestApp, openid: &str) -> MemberClient {
    let sandbox = app.state.sandbox.as_ref().expect("no sandbox in this app");
    let code = format!("code-{}", uuid::Uuid::new_v4().simple());
    sandbox.add_login_code(&code, openid, None, false);
    let reply = Reply::of(
        app.client
            .post(app.url("/api/v1/member/auth/login"))
            .json(&serde_json::json!({"code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    MemberClient {
        client: app.client.clone(),
        base: app.url(""),
        token: reply.body["token"].as_str().unwrap().to_string(),
    }
}

/// A member who logged in, consented, bound `phone` and joined; returns the client and the
/// card `POST /member/join` answered (with `member_id`).
pub async fn member_joined(
    app: &TestApp,
    openid: &str,
    phone: &str,
) -> (MemberClient, serde_json::Value) {
    let m = member_login(app, openid).await;
    let r = m
        .post(
            "/api/v1/member/consent",
            serde_json::json!({"policy_version": "2026-11", "marketing": true, "sensitive_health": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let sandbox = app.state.sandbox.as_ref().expect("no sandbox in this app");
    let code = format!("phone-{}", uuid::Uuid::new_v4().simple());
    sandbox.add_phone_code(&code, phone);
    let r = m
        .post("/api/v1/member/phone", serde_json::json!({"code": code}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = m.post("/api/v1/member/join", serde_json::json!({})).await;
    assert_eq!(r.status, 201, "{r:?}");
    (m, r.body)
}

/// The customer id behind a member id.
pub async fn customer_of_member(app: &TestApp, member_id: i64) -> i64 {
    use sea_orm::EntityTrait;
    entity::member::Entity::find_by_id(member_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .customer_id
}

/// A chain to run loyalty tests in: one store, an admin and a front-desk account signed in.
pub struct Chain {
    pub store: i64,
    pub admin: StaffClient,
    pub desk: StaffClient,
}

pub async fn chain(app: &TestApp) -> Chain {
    let store = create_store(app, "静安店").await;
    create_staff(app, "hq", "admin", None).await;
    create_staff(app, "desk", "front_desk", Some(store)).await;
    Chain {
        store,
        admin: staff_login_bearer(app, "hq").await,
        desk: staff_login_bearer(app, "desk").await,
    }
}

impl Chain {
    /// Staff claim a customer who joined in the mini-program into this store, so they can serve
    /// them (a member without a store is outside every store's reach).
    pub async fn claim(&self, app: &TestApp, member_id: i64) -> i64 {
        use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
        let customer_id = customer_of_member(app, member_id).await;
        entity::customer::Entity::update_many()
            .col_expr(
                entity::customer::Column::HomeStoreId,
                Expr::value(self.store),
            )
            .filter(entity::customer::Column::Id.eq(customer_id))
            .exec(&app.state.db)
            .await
            .unwrap();
        customer_id
    }

    /// Records a paid consumption now; asserts it was accepted and returns the answer.
    pub async fn consume(
        &self,
        customer_id: i64,
        order_no: &str,
        paid_fen: i64,
    ) -> serde_json::Value {
        let r = self
            .desk
            .post(
                "/api/v1/staff/consumptions",
                serde_json::json!({
                    "customer_id": customer_id,
                    "store_id": self.store,
                    "order_no": order_no,
                    "items": [{"name": "水光针", "quantity": 1, "amount_fen": paid_fen}],
                    "paid_fen": paid_fen,
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }
}

/// Every member's balance equals the sum of its live lots.
pub async fn assert_ledger_consistent(app: &TestApp) {
    let bad = memberhub::loyalty::ledger::invariant_violations(&app.state.db)
        .await
        .unwrap();
    assert!(
        bad.is_empty(),
        "balance != sum of live lots for (member, balance, lots): {bad:?}"
    );
}

/// Runs a job the way `memberhub jobs run NAME --date DATE` does; panics with its error.
pub async fn run_job(
    app: &TestApp,
    name: &str,
    date: chrono::NaiveDate,
) -> memberhub::loyalty::jobs::JobReport {
    let ctx = memberhub::loyalty::jobs::JobContext::of(&app.state);
    memberhub::loyalty::jobs::run(&ctx, name, Some(date))
        .await
        .unwrap_or_else(|e| panic!("{name} failed: {}", e.describe()))
}
