//! Builds the application: connects the database and cache, binds the listener (port 0 picks a
//! free port), mounts the routes behind the shared middleware and serves the OpenAPI document
//! generated from them.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer};
use actix_web_prom::PrometheusMetricsBuilder;
use sea_orm::DatabaseConnection;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::privacy::Vault;
use crate::state::AppState;
use crate::telemetry::RequestSpan;
use crate::wechat::client::{ClientOptions, WechatClient};
use crate::wechat::sandbox::{
    PushFormat, PushTarget, Sandbox, SANDBOX_APPID, SANDBOX_OA_APPID, SANDBOX_OA_SECRET,
    SANDBOX_SECRET,
};
use crate::{db, error, health};
use secrecy::SecretString;

pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";
pub const METRICS_PATH: &str = "/metrics";
pub const SANDBOX_SCOPE: &str = "/__sandbox/wechat";
pub const PUSH_PATH: &str = "/wechat/push";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "memberhub",
        description = "Member and private-domain system of a medical-aesthetics clinic chain. \
                       Errors are `{\"error\": {\"code\", \"message\"}}` with a stable `code`."
    ),
    components(schemas(error::ErrorEnvelope, error::ErrorBody)),
    modifiers(&MemberBearer)
)]
struct ApiDoc;

/// Declares the member bearer token and the staff cookie and bearer token.
struct MemberBearer;

impl utoipa::Modify for MemberBearer {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "staff_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::staff::SESSION_COOKIE,
                "The console session from POST /api/v1/staff/auth/login; state-changing \
                 requests must also send the login's csrf_token in X-CSRF-Token",
            ))),
        );
        components.add_security_scheme(
            "staff_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token from POST /api/v1/staff/auth/login with session=bearer",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "member",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token from POST /api/v1/member/auth/login"))
                    .build(),
            ),
        );
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The scheduler and the outbox senders: they live as long as the server.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Connects to the configured database (applying migrations unless told not to) and cache,
    /// then binds the server. Each step says what it did in one log line.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = db::connect(&settings.database).await?;
        tracing::info!("database: {}", db::describe(&db, &settings.database));
        if settings.database.migrate_on_start {
            let applied = db::migrate(&db).await?;
            tracing::info!("migrations: {applied} applied, schema up to date");
        }
        let cache = Cache::connect(&settings.redis)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to the cache: {e}"))?;
        match settings.redis.url() {
            Some(url) => tracing::info!(
                "cache: Redis at {} (key prefix {:?})",
                crate::config::redact_url(url),
                cache.prefix()
            ),
            None => tracing::info!(
                "cache: in-process (moka); use Redis when running more than one instance"
            ),
        }
        Self::build_with(settings, db, cache)
    }

    /// Binds the server around an existing database and cache (tests use this to inject a
    /// broken one).
    pub fn build_with(
        settings: Settings,
        db: DatabaseConnection,
        cache: Cache,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}:{}: {e}",
                    settings.server.host,
                    settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let (wechat, oa, sandbox) = wechat_for(&settings, port, cache.clone())?;
        let vault = Vault::from_settings(&settings.security, settings.wechat.sandbox())?;
        let state = AppState {
            settings: Arc::new(settings),
            db,
            cache,
            wechat,
            oa,
            vault,
            sandbox,
            clock: Clock::system(),
        };
        let metrics = PrometheusMetricsBuilder::new("memberhub")
            .endpoint(METRICS_PATH)
            .mask_unmatched_patterns("UNKNOWN")
            .build()
            .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        let data = web::Data::new(state.clone());
        let artwork = web::Data::new(crate::static_mp::Catalogue::load());

        let mut server = HttpServer::new(move || {
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .app_data(data.clone())
                .app_data(error::json_config())
                .app_data(error::path_config())
                .app_data(error::query_config())
                .configure(routes)
                .split_for_parts();
            let api_json = web::Data::new(document(api));
            let sandbox = data.sandbox.clone();
            app.app_data(api_json)
                .route(OPENAPI_PATH, web::get().to(openapi_json))
                .configure(crate::static_mp::configure(artwork.clone()))
                .configure(|cfg| {
                    if let Some(sb) = sandbox {
                        cfg.service(
                            web::scope(SANDBOX_SCOPE)
                                .configure(crate::wechat::sandbox::configure(sb)),
                        );
                    }
                })
                .default_service(web::to(error::not_found))
                .wrap(error::envelope_errors())
                .wrap_fn(|req, srv| {
                    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                    let response = srv.call(req);
                    async move {
                        let mut res = response.await?;
                        if let Some(v) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                            res.headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), v);
                        }
                        Ok(res)
                    }
                })
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(metrics.clone())
        })
        .listen(listener)?
        // main() owns signal handling so that SIGTERM and Ctrl-C both stop gracefully.
        .disable_signals()
        .shutdown_timeout(state.settings.server.shutdown_timeout_secs);
        if let Some(workers) = state.settings.server.workers {
            server = server.workers(workers);
        }
        tracing::info!(
            "listening on http://{}:{}",
            state.settings.server.host,
            port
        );
        let mut background = Vec::new();
        if state.settings.jobs.enabled {
            background.push(crate::loyalty::jobs::spawn_scheduler(state.clone()));
            background.push(crate::loyalty::jobs::spawn_frequent(state.clone()));
        }
        if state.settings.messaging.enabled {
            background.extend(crate::messaging::sender::spawn_sender(state.clone()));
        }
        Ok(Self {
            port,
            server: server.run(),
            state,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the server; `stop(true)` lets in-flight requests finish first.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then stops the background tasks: a sender row abandoned
    /// mid-send is taken over after its lease, like a crashed worker's.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        for task in &self.background {
            task.abort();
        }
        served
    }
}

/// Every documented route. A module adds its own with `.service(...)` here and its handlers
/// carry `#[utoipa::path]`, which is how they appear in the OpenAPI document.
fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .configure(crate::members::routes)
        .configure(crate::staff::routes)
        .configure(crate::customers::routes)
        .configure(crate::audit::routes)
        .configure(crate::loyalty::routes)
        .configure(crate::booking::routes)
        .configure(crate::messaging::routes)
        .configure(crate::wechat::subscriptions::routes)
        .configure(crate::wechat::push::routes);
}

/// The WeChat client, and the sandbox when no appid is configured. In sandbox mode the client
/// talks to the sandbox mounted in this very server (unless a base URL points elsewhere, as
/// tests with a shared sandbox do), and the sandbox pushes to this server's push endpoint.
fn wechat_for(
    settings: &Settings,
    port: u16,
    cache: Cache,
) -> anyhow::Result<(WechatClient, Option<WechatClient>, Option<Sandbox>)> {
    use secrecy::ExposeSecret;
    let w = &settings.wechat;
    let host = match settings.server.host.as_str() {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        h => h,
    };
    let own = format!("http://{host}:{port}");
    let (appid, secret, sandbox) = if w.sandbox() {
        let sandbox = Sandbox::default();
        sandbox.set_push_target(Some(PushTarget {
            url: format!("{own}{PUSH_PATH}"),
            token: w.push_token.expose_secret().to_string(),
            aes_key: w.push_aes_key().map(str::to_string),
            appid: SANDBOX_APPID.to_string(),
            format: PushFormat::Json,
        }));
        (
            SANDBOX_APPID.to_string(),
            SecretString::from(SANDBOX_SECRET),
            Some(sandbox),
        )
    } else {
        (
            w.appid.clone().unwrap_or_default(),
            w.secret.clone().unwrap_or_else(|| SecretString::from("")),
            None,
        )
    };
    let base_url = match (&w.base_url, &sandbox) {
        (Some(url), _) => url.clone(),
        (None, Some(_)) => format!("{own}{SANDBOX_SCOPE}"),
        (None, None) => "https://api.weixin.qq.com".to_string(),
    };
    match &sandbox {
        Some(_) => tracing::info!("wechat: sandbox (appid {appid}) at {base_url}"),
        None => tracing::info!("wechat: appid {appid} at {base_url}"),
    }
    let options = |appid: String, secret: SecretString, base_url: String| ClientOptions {
        base_url,
        appid,
        secret,
        timeout: Duration::from_millis(w.timeout_ms),
        retry_base: Duration::from_millis(w.retry_base_ms),
        busy_retries: w.busy_retries,
    };
    // The sandbox plays a 服务号 too; a real one is configured by its own appid and secret.
    let oa_credentials = match (&sandbox, w.oa_appid.as_deref().map(str::trim)) {
        (Some(_), _) => Some((
            SANDBOX_OA_APPID.to_string(),
            SecretString::from(SANDBOX_OA_SECRET),
        )),
        (None, Some(oa_appid)) if !oa_appid.is_empty() => Some((
            oa_appid.to_string(),
            w.oa_secret
                .clone()
                .unwrap_or_else(|| SecretString::from("")),
        )),
        _ => None,
    };
    let oa = match oa_credentials {
        Some((oa_appid, oa_secret)) => {
            tracing::info!("wechat: official account {oa_appid}");
            Some(WechatClient::new(
                options(oa_appid, oa_secret, base_url.clone()),
                cache.clone(),
            )?)
        }
        None => None,
    };
    let client = WechatClient::new(options(appid, secret, base_url), cache)?;
    Ok((client, oa, sandbox))
}

/// The generated document plus the two routes served outside the generated set.
fn document(mut api: OpenApiDoc) -> String {
    let text = |description: &str, content_type: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(content_type, utoipa::openapi::ContentBuilder::new().build())
            .build()
    };
    api.paths.add_path_operation(
        METRICS_PATH,
        vec![HttpMethod::Get],
        OperationBuilder::new()
            .tag("health")
            .summary(Some(
                "Prometheus metrics: request counts and latency by route and status",
            ))
            .response("200", text("Prometheus text format", "text/plain")),
    );
    api.paths.add_path_operation(
        OPENAPI_PATH,
        vec![HttpMethod::Get],
        OperationBuilder::new()
            .tag("health")
            .summary(Some("This OpenAPI document"))
            .response("200", text("OpenAPI 3 document", "application/json")),
    );
    api.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        String::from("{}")
    })
}

async fn openapi_json(doc: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.get_ref().clone())
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Ties the server to the process signals: on either, stop accepting and let in-flight
/// requests finish (up to `server.shutdown_timeout_secs`).
pub async fn serve(app: Application) -> std::io::Result<()> {
    let handle = app.handle();
    let timeout = Duration::from_secs(app.state().settings.server.shutdown_timeout_secs);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            "shutting down: no new connections, in-flight requests have {}s to finish",
            timeout.as_secs()
        );
        handle.stop(true).await;
    });
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
