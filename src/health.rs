//! Liveness and readiness. `/healthz` says the process answers; `/readyz` says it can serve,
//! i.e. the database and the cache both answer, and names the one that does not.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;

use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Serialize, Clone, Copy, utoipa::ToSchema)]
pub struct Checks {
    /// `ok` or `unavailable`.
    pub database: &'static str,
    /// `ok` or `unavailable`.
    pub cache: &'static str,
}

#[utoipa::path(tag = "health", responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Database and cache answer", body = Readiness),
        (status = 503, description = "The database or the cache does not answer; `checks` says which", body = ErrorEnvelope),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (db, cache) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, crate::db::ping(&state.db)),
        tokio::time::timeout(CHECK_TIMEOUT, state.cache.ping()),
    );
    let db_ok = matches!(db, Ok(Ok(())));
    let cache_ok = matches!(cache, Ok(Ok(())));
    if !db_ok {
        tracing::warn!(error = ?db, "readiness: database does not answer");
    }
    if !cache_ok {
        tracing::warn!(backend = state.cache.backend_name(), error = ?cache, "readiness: cache does not answer");
    }
    let label = |ok: bool| if ok { "ok" } else { "unavailable" };
    let checks = Checks {
        database: label(db_ok),
        cache: label(cache_ok),
    };
    if db_ok && cache_ok {
        return Ok(HttpResponse::Ok().json(Readiness {
            status: "ready",
            checks,
        }));
    }
    let down: Vec<(&str, &str)> = [("database", "数据库", db_ok), ("cache", "缓存", cache_ok)]
        .into_iter()
        .filter(|(_, _, ok)| !ok)
        .map(|(name, label, _)| (name, label))
        .collect();
    let failed: Vec<&str> = down.iter().map(|(name, _)| *name).collect();
    let labels: Vec<&str> = down.iter().map(|(_, label)| *label).collect();
    Err(ApiError::unavailable(
        "not_ready",
        format!("服务暂不可用：{}无响应", labels.join("、")),
    )
    .with_detail("failed", failed)
    .with_detail("checks", serde_json::to_value(checks).unwrap_or_default()))
}
