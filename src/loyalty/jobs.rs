//! Nightly loyalty jobs, each idempotent and runnable as `memberhub jobs run NAME`.
//! (Being written.)

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::cache::Cache;
use crate::config::Settings;
use crate::error::ApiError;

pub const JOBS: &[&str] = &["points-expiry", "points-expiry-reminders", "tier-retention"];

/// What a job needs: no HTTP state, so the CLI can run it too.
pub struct JobContext<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a Cache,
    pub settings: &'a Settings,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct JobReport {
    pub job: String,
    /// The business date the job ran for.
    pub date: NaiveDate,
    /// What it did, e.g. `{"lots_expired": 3, "points_expired": 420}`.
    pub counts: BTreeMap<String, i64>,
}

pub async fn run(
    _ctx: &JobContext<'_>,
    name: &str,
    _date: Option<NaiveDate>,
) -> Result<JobReport, ApiError> {
    Err(ApiError::not_found("任务").with_detail("job", name.to_string()))
}

pub fn routes(_cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {}

/// Starts the in-server schedule (`jobs.enabled`). (Being written.)
pub fn spawn_scheduler(_state: crate::state::AppState) {}
