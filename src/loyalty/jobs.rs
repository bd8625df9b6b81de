//! Nightly loyalty jobs (DESIGN sections 3, 4 and 10): points expiry, points-expiry reminders
//! and tier retention (保级); the booking jobs and the messaging automations (birthday, recall)
//! are registered here too. Each is idempotent for a business date, so the scheduler, an
//! operator's `memberhub jobs run NAME` and an admin's `POST /api/v1/staff/jobs/{name}/run` can
//! all run it, twice or concurrently, without doing anything twice.
//!
//! Work is done in one short write transaction per lot or per member, never one giant one:
//! a nightly run over the whole chain must not hold SQLite's write lock (or thousands of
//! PostgreSQL row locks) for minutes while members check in and staff record consumptions.
//! One item that fails is logged and counted in `failed`; the others still run, and the next
//! run picks the failed one up again.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Days, NaiveDate, Utc};
use entity::{member, points_lot};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::calendar::add_months;
use super::card;
use super::ledger;
use super::tiers::{trailing_spend, TierTable};
use crate::audit;
use crate::auth::staff::{Action, Staff};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::outbox;
use crate::state::AppState;

pub const JOBS: &[&str] = &[
    "points-expiry",
    "points-expiry-reminders",
    "tier-retention",
    "booking-reminders",
    "booking-no-shows",
    "birthday-greetings",
    "recall",
];

/// Jobs the scheduler also runs every few minutes: each is idempotent per booking, and what
/// they do falls due during the day (a slot ends, a booking is made the day before).
pub const FREQUENT_JOBS: &[&str] = &["booking-reminders", "booking-no-shows"];

/// What a job needs: no HTTP state, so the CLI can run it too.
pub struct JobContext<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a Cache,
    pub settings: &'a Settings,
    /// The server's time: booking jobs act on slots that have ended by it.
    pub clock: &'a Clock,
}

impl<'a> JobContext<'a> {
    /// What a job needs, taken from the server's state.
    pub fn of(state: &'a AppState) -> Self {
        Self {
            db: &state.db,
            cache: &state.cache,
            settings: &state.settings,
            clock: &state.clock,
        }
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct JobReport {
    pub job: String,
    /// The business date the job ran for.
    pub date: NaiveDate,
    /// What it did, e.g. `{"lots_expired": 3, "points_expired": 420}`.
    pub counts: BTreeMap<String, i64>,
}

/// Rows read per query while walking lots or members; each item still gets its own
/// transaction.
const PAGE: u64 = 500;

/// Retention periods one member may pass through in one run. A tier whose validity ended long
/// ago (the job did not run for years) is replayed period by period; the bound only guards
/// against a loop, it is far above what a real backlog needs.
const MAX_RETENTION_STEPS: usize = 120;

/// Member-facing messages queued at night are sent from 10:00 business time, not at 02:00.
const MESSAGE_HOUR: i64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    PointsExpiry,
    PointsExpiryReminders,
    TierRetention,
    BookingReminders,
    BookingNoShows,
    BirthdayGreetings,
    Recall,
}

impl Job {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "points-expiry" => Some(Job::PointsExpiry),
            "points-expiry-reminders" => Some(Job::PointsExpiryReminders),
            "tier-retention" => Some(Job::TierRetention),
            "booking-reminders" => Some(Job::BookingReminders),
            "booking-no-shows" => Some(Job::BookingNoShows),
            "birthday-greetings" => Some(Job::BirthdayGreetings),
            "recall" => Some(Job::Recall),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Job::PointsExpiry => "points-expiry",
            Job::PointsExpiryReminders => "points-expiry-reminders",
            Job::TierRetention => "tier-retention",
            Job::BookingReminders => "booking-reminders",
            Job::BookingNoShows => "booking-no-shows",
            Job::BirthdayGreetings => "birthday-greetings",
            Job::Recall => "recall",
        }
    }
}

fn unknown_job(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_job", "没有这个任务")
        .with_detail("job", name.chars().take(64).collect::<String>())
        .with_detail("jobs", JOBS.to_vec())
}

/// The job and the date it runs for, checked before anything runs. A date in the future is
/// refused: expiring points or ending tiers ahead of time could not be undone.
fn resolve(
    ctx: &JobContext<'_>,
    name: &str,
    date: Option<NaiveDate>,
) -> Result<(Job, NaiveDate), ApiError> {
    let job = Job::parse(name).ok_or_else(|| unknown_job(name))?;
    let today = ctx.settings.loyalty.calendar().date_of(ctx.clock.now());
    let date = date.unwrap_or(today);
    if date > today {
        return Err(ApiError::validation("date", "不能为未来的日期运行任务")
            .with_detail("today", today.to_string()));
    }
    Ok((job, date))
}

/// Runs the job `name` for the business date `date` (default: today in the business zone).
pub async fn run(
    ctx: &JobContext<'_>,
    name: &str,
    date: Option<NaiveDate>,
) -> Result<JobReport, ApiError> {
    let (job, date) = resolve(ctx, name, date)?;
    execute(ctx, job, date).await
}

async fn execute(ctx: &JobContext<'_>, job: Job, date: NaiveDate) -> Result<JobReport, ApiError> {
    let counts = match job {
        Job::PointsExpiry => points_expiry(ctx, date).await?,
        Job::PointsExpiryReminders => points_expiry_reminders(ctx, date).await?,
        Job::TierRetention => tier_retention(ctx, date).await?,
        Job::BookingReminders => crate::booking::jobs::reminders(ctx, date).await?,
        Job::BookingNoShows => crate::booking::jobs::no_shows(ctx, date).await?,
        Job::BirthdayGreetings => {
            crate::messaging::automations::birthday_greetings(ctx, date).await?
        }
        Job::Recall => crate::messaging::automations::recall(ctx, date).await?,
    };
    Ok(JobReport {
        job: job.name().to_string(),
        date,
        counts: counts.0,
    })
}

/// A report's counts, every key present from the start so a quiet night still says "0".
pub struct Counts(BTreeMap<String, i64>);

impl Counts {
    pub fn new(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| (k.to_string(), 0)).collect())
    }

    pub fn add(&mut self, key: &str, n: i64) {
        *self.0.entry(key.to_string()).or_default() += n;
    }
}

/// When a message queued by the run for `date` may be sent.
fn message_due(ctx: &JobContext<'_>, date: NaiveDate) -> DateTime<Utc> {
    ctx.settings.loyalty.calendar().start_of(date) + chrono::Duration::hours(MESSAGE_HOUR)
}

// ---------------------------------------------------------------- points-expiry

/// Expires every live earn lot whose last usable day is before `date`.
async fn points_expiry(ctx: &JobContext<'_>, date: NaiveDate) -> Result<Counts, ApiError> {
    let mut counts = Counts::new(&["lots_expired", "points_expired", "failed"]);
    let mut after = 0i64;
    loop {
        // Lots already drained by spending are included: marking them expired keeps them out
        // of every later night's scan.
        let page: Vec<(i64, i64)> = points_lot::Entity::find()
            .select_only()
            .column(points_lot::Column::Id)
            .column(points_lot::Column::MemberId)
            .filter(points_lot::Column::Kind.eq("earn"))
            .filter(points_lot::Column::ExpiredAt.is_null())
            .filter(points_lot::Column::ExpiresOn.lt(date))
            .filter(points_lot::Column::Id.gt(after))
            .order_by_asc(points_lot::Column::Id)
            .limit(PAGE)
            .into_tuple()
            .all(ctx.db)
            .await?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        after = last;
        for (lot_id, member_id) in page {
            let expired = db::write(ctx.db, move |txn| {
                Box::pin(async move { Ok::<_, ApiError>(ledger::expire_lot(txn, lot_id).await?) })
            })
            .await;
            match expired {
                Ok(0) => {}
                Ok(points) => {
                    counts.add("lots_expired", 1);
                    counts.add("points_expired", points);
                    card::invalidate(ctx.cache, member_id).await;
                }
                Err(e) => {
                    counts.add("failed", 1);
                    tracing::error!(lot_id, member_id, error = %e.describe(), "points-expiry: cannot expire a lot");
                }
            }
        }
    }
    Ok(counts)
}

// ---------------------------------------------------------------- points-expiry-reminders

/// Queues one reminder per member with live points expiring from `date` through
/// `date + expiry_reminder_days`. The reference names the earliest expiry date, so the member
/// hears about each expiry date once however many nights it stays in the window.
async fn points_expiry_reminders(
    ctx: &JobContext<'_>,
    date: NaiveDate,
) -> Result<Counts, ApiError> {
    #[derive(FromQueryResult)]
    struct Row {
        member_id: i64,
        expires_on: Option<NaiveDate>,
        points: Option<i64>,
    }
    let mut counts = Counts::new(&["queued", "already_queued", "failed"]);
    let until = date + Days::new(u64::from(ctx.settings.loyalty.expiry_reminder_days));
    let due_at = message_due(ctx, date);
    let live_in_window = || {
        points_lot::Entity::find()
            .filter(points_lot::Column::Kind.eq("earn"))
            .filter(points_lot::Column::ExpiredAt.is_null())
            .filter(points_lot::Column::Remaining.gt(0))
            .filter(points_lot::Column::ExpiresOn.gte(date))
            .filter(points_lot::Column::ExpiresOn.lte(until))
    };
    let mut after = 0i64;
    loop {
        let members: Vec<i64> = live_in_window()
            .select_only()
            .column(points_lot::Column::MemberId)
            .filter(points_lot::Column::MemberId.gt(after))
            .group_by(points_lot::Column::MemberId)
            .order_by_asc(points_lot::Column::MemberId)
            .limit(PAGE)
            .into_tuple()
            .all(ctx.db)
            .await?;
        let Some(&last) = members.last() else {
            break;
        };
        after = last;
        let rows = live_in_window()
            .select_only()
            .column(points_lot::Column::MemberId)
            .column(points_lot::Column::ExpiresOn)
            .column_as(Expr::cust("CAST(SUM(remaining) AS BIGINT)"), "points")
            .filter(points_lot::Column::MemberId.is_in(members.clone()))
            .group_by(points_lot::Column::MemberId)
            .group_by(points_lot::Column::ExpiresOn)
            .order_by_asc(points_lot::Column::MemberId)
            .order_by_asc(points_lot::Column::ExpiresOn)
            .into_model::<Row>()
            .all(ctx.db)
            .await?;
        let customers: BTreeMap<i64, i64> = member::Entity::find()
            .select_only()
            .column(member::Column::Id)
            .column(member::Column::CustomerId)
            .filter(member::Column::Id.is_in(members.clone()))
            .into_tuple::<(i64, i64)>()
            .all(ctx.db)
            .await?
            .into_iter()
            .collect();
        let mut per_member: BTreeMap<i64, Vec<(NaiveDate, i64)>> = BTreeMap::new();
        for r in rows {
            if let (Some(on), Some(points)) = (r.expires_on, r.points) {
                per_member
                    .entry(r.member_id)
                    .or_default()
                    .push((on, points));
            }
        }
        for (member_id, dates) in per_member {
            let (Some(&customer_id), Some(&(earliest, _))) =
                (customers.get(&member_id), dates.first())
            else {
                continue;
            };
            let payload = json!({
                "member_id": member_id,
                "points": dates.iter().map(|(_, p)| p).sum::<i64>(),
                "expires_on": earliest,
                "dates": dates
                    .iter()
                    .map(|(on, p)| json!({"expires_on": on, "points": p}))
                    .collect::<Vec<_>>(),
            });
            let queued = outbox::queue(
                ctx.db,
                outbox::kind::POINTS_EXPIRING,
                customer_id,
                format!("member:{member_id}:{earliest}"),
                payload,
                due_at,
            )
            .await;
            match queued {
                Ok(true) => counts.add("queued", 1),
                Ok(false) => counts.add("already_queued", 1),
                Err(e) => {
                    counts.add("failed", 1);
                    tracing::error!(member_id, error = %e, "points-expiry-reminders: cannot queue a reminder");
                }
            }
        }
    }
    Ok(counts)
}

// ---------------------------------------------------------------- tier-retention

/// What one retention step did to a member.
enum Retained {
    Renewed,
    Downgraded,
    /// An entry tier that somehow carried an end date lost it; nothing to count or tell.
    Cleared,
}

/// Ends the tiers whose validity ended before `date` (renewal or downgrade), then reminds the
/// members whose tier ends within the reminder window and who do not meet it yet.
async fn tier_retention(ctx: &JobContext<'_>, date: NaiveDate) -> Result<Counts, ApiError> {
    let mut counts = Counts::new(&[
        "renewed",
        "downgraded",
        "reminders_queued",
        "reminders_already_queued",
        "failed",
    ]);
    let months = ctx.settings.loyalty.tier_validity_months;
    let due_at = message_due(ctx, date);

    let mut after = 0i64;
    loop {
        let due: Vec<i64> = member::Entity::find()
            .select_only()
            .column(member::Column::Id)
            .filter(member::Column::TierValidUntil.lt(date))
            .filter(member::Column::Id.gt(after))
            .order_by_asc(member::Column::Id)
            .limit(PAGE)
            .into_tuple()
            .all(ctx.db)
            .await?;
        let Some(&last) = due.last() else {
            break;
        };
        after = last;
        for member_id in due {
            let mut changed = false;
            // A renewed validity that is still before `date` (a backlog of missed nights) is
            // due again: replay it period by period, each in its own transaction.
            for step in 0.. {
                if step == MAX_RETENTION_STEPS {
                    counts.add("failed", 1);
                    tracing::error!(member_id, "tier-retention: still due after {step} periods");
                    break;
                }
                let res = db::write(ctx.db, move |txn| {
                    Box::pin(retain_once(txn, member_id, date, months, due_at))
                })
                .await;
                match res {
                    Ok(Some(r)) => {
                        changed = true;
                        match r {
                            Retained::Renewed => counts.add("renewed", 1),
                            Retained::Downgraded => counts.add("downgraded", 1),
                            Retained::Cleared => {}
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        counts.add("failed", 1);
                        tracing::error!(member_id, error = %e.describe(), "tier-retention: cannot end a tier period");
                        break;
                    }
                }
            }
            if changed {
                card::invalidate(ctx.cache, member_id).await;
            }
        }
    }

    retention_reminders(ctx, date, due_at, &mut counts).await?;
    Ok(counts)
}

/// Ends one validity period of one member whose tier ended before `date`: renews the tier for
/// `months` when the spend of the 12 months up to its last day still meets it, else drops the
/// member to the highest tier that spend meets. `None` when the member is not due (any more).
async fn retain_once(
    txn: &DatabaseTransaction,
    member_id: i64,
    date: NaiveDate,
    months: u32,
    due_at: DateTime<Utc>,
) -> Result<Option<Retained>, ApiError> {
    // Under the member's lock an upgrade, a refund or a concurrent run cannot interleave.
    let m = ledger::lock_member(txn, member_id).await?;
    let Some(old_until) = m.tier_valid_until.filter(|u| *u < date) else {
        return Ok(None);
    };
    let tiers = TierTable::load(txn).await?;
    let current = tiers.by_id(m.tier_id).unwrap_or_else(|| tiers.entry());
    let spend = trailing_spend(txn, m.customer_id, old_until, 12).await?;
    let met = tiers.met_by(spend);
    let renewed = met.rank >= current.rank;
    let target = if renewed { current } else { met };
    // The entry tier needs no renewal and has no end date.
    let new_until = (target.rank > 0).then(|| add_months(old_until, months));
    let res = member::Entity::update_many()
        .col_expr(member::Column::TierId, Expr::value(target.id))
        .col_expr(member::Column::TierValidUntil, Expr::value(new_until))
        .col_expr(
            member::Column::TierSource,
            Expr::value(if renewed { "renewal" } else { "downgrade" }),
        )
        // The fallback a refund of the upgrading consumption would use no longer applies.
        .col_expr(member::Column::PrevTierId, Expr::value(Option::<i64>::None))
        .col_expr(
            member::Column::PrevTierValidUntil,
            Expr::value(Option::<NaiveDate>::None),
        )
        .col_expr(member::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(member::Column::Id.eq(m.id))
        .filter(member::Column::TierId.eq(m.tier_id))
        .filter(member::Column::TierValidUntil.eq(old_until))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    if current.rank == 0 {
        return Ok(Some(Retained::Cleared));
    }
    let after = member::Model {
        tier_id: target.id,
        tier_valid_until: new_until,
        ..m.clone()
    };
    // What the member actually holds now: a manual floor may keep them above `target`.
    let (effective, _, _) = tiers.effective(&after, date);
    outbox::queue(
        txn,
        outbox::kind::TIER_CHANGED,
        m.customer_id,
        format!("member:{}:{old_until}", m.id),
        json!({
            "member_id": m.id,
            "from": current.code,
            "from_name": current.name,
            "to": target.code,
            "to_name": target.name,
            "valid_until": new_until,
            "renewed": renewed,
            "effective": effective.code,
            "spend_fen": spend,
        }),
        due_at,
    )
    .await?;
    Ok(Some(if renewed {
        Retained::Renewed
    } else {
        Retained::Downgraded
    }))
}

/// Queues a retention reminder for every member above the entry tier whose tier ends from
/// `date` through `date + retention_reminder_days` and whose qualifying spend does not meet it
/// yet. The spend is the one the retention decision will use (the 12 months up to the tier's
/// last day, as recorded so far), so the missing amount is what the member really still needs.
async fn retention_reminders(
    ctx: &JobContext<'_>,
    date: NaiveDate,
    due_at: DateTime<Utc>,
    counts: &mut Counts,
) -> Result<(), ApiError> {
    let until = date + Days::new(u64::from(ctx.settings.loyalty.retention_reminder_days));
    let tiers = TierTable::load(ctx.db).await?;
    let mut after = 0i64;
    loop {
        let page = member::Entity::find()
            .filter(member::Column::TierValidUntil.gte(date))
            .filter(member::Column::TierValidUntil.lte(until))
            .filter(member::Column::Id.gt(after))
            .order_by_asc(member::Column::Id)
            .limit(PAGE)
            .all(ctx.db)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for m in page {
            let Some(valid_until) = m.tier_valid_until else {
                continue;
            };
            let Some(tier) = tiers.by_id(m.tier_id).filter(|t| t.rank > 0) else {
                continue;
            };
            // A manual floor at least as high that outlasts the tier: the member keeps what
            // they have whatever they spend, so there is nothing to remind them of.
            let day_after = valid_until + Days::new(1);
            let floor = m
                .manual_tier_id
                .filter(|_| m.manual_tier_until.is_none_or(|u| u >= day_after))
                .and_then(|id| tiers.by_id(id));
            if floor.is_some_and(|f| f.rank >= tier.rank) {
                continue;
            }
            let spend = match trailing_spend(ctx.db, m.customer_id, valid_until, 12).await {
                Ok(s) => s,
                Err(e) => {
                    counts.add("failed", 1);
                    tracing::error!(member_id = m.id, error = %e, "tier-retention: cannot read the spend");
                    continue;
                }
            };
            if spend >= tier.threshold_fen {
                continue;
            }
            let queued = outbox::queue(
                ctx.db,
                outbox::kind::RETENTION_REMINDER,
                m.customer_id,
                format!("member:{}:{valid_until}", m.id),
                json!({
                    "member_id": m.id,
                    "tier": tier.code,
                    "tier_name": tier.name,
                    "valid_until": valid_until,
                    "spend_fen": spend,
                    "missing_fen": tier.threshold_fen - spend,
                }),
                due_at,
            )
            .await;
            match queued {
                Ok(true) => counts.add("reminders_queued", 1),
                Ok(false) => counts.add("reminders_already_queued", 1),
                Err(e) => {
                    counts.add("failed", 1);
                    tracing::error!(member_id = m.id, error = %e, "tier-retention: cannot queue a reminder");
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- staff API

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RunJobRequest {
    /// The business date to run for (`YYYY-MM-DD`); default today in the business zone. Not
    /// in the future.
    pub date: Option<NaiveDate>,
}

/// The body is optional: empty means "today". Anything else must be valid, so a typo never
/// silently becomes a run for today.
fn parse_body(body: &[u8]) -> Result<RunJobRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RunJobRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request("invalid_body", format!("请求字段有误：{e}"))
        } else {
            ApiError::bad_request("invalid_json", format!("请求体不是有效的 JSON：{e}"))
        }
    })
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_run_job",
    params(("name" = String, Path, description = "`points-expiry`, `points-expiry-reminders`, `tier-retention`, `booking-reminders` or `booking-no-shows`")),
    request_body(content = RunJobRequest, description = "May be absent: runs for today"),
    responses(
        (status = 200, description = "The job ran; what it did", body = JobReport),
        (status = 400, description = "`validation_failed` (a date in the future), `invalid_json`", body = ErrorEnvelope),
        (status = 403, description = "`permission_denied`: admins only", body = ErrorEnvelope),
        (status = 404, description = "`unknown_job`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/jobs/{name}/run")]
pub async fn run_job(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::JobRun)?;
    let input = parse_body(&body)?;
    let ctx = JobContext::of(&state);
    let (job, date) = resolve(&ctx, &path.into_inner(), input.date)?;
    let result = execute(&ctx, job, date).await;
    // Written after the run so the trail holds what it did; a failed run is recorded too,
    // since it may have changed part of what it meant to.
    let detail = match &result {
        Ok(report) => json!({"job": job.name(), "date": date, "counts": report.counts}),
        Err(e) => json!({"job": job.name(), "date": date, "error": e.code()}),
    };
    audit::entry("job.run")
        .by(&staff)
        .detail(detail)
        .write(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(result?))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(run_job);
}

// ---------------------------------------------------------------- scheduler

/// How long a day's lease on a job lasts: past the end of that day wherever `run_at` is, so no
/// instance runs it again that day, and gone long before the key could matter again.
const LEASE_TTL: Duration = Duration::from_secs(36 * 3600);

/// After a failed attempt, the day's jobs are tried again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Starts the in-server schedule (`jobs.enabled`): every minute, once the business-zone time
/// is past `jobs.run_at` on a date not yet done, runs the jobs in order for that date, each
/// under a lease in the shared cache so that one instance of many runs it.
pub fn spawn_scheduler(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tz = state.settings.loyalty.tz();
        let run_at = state.settings.jobs.run_at_time();
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut done: Option<NaiveDate> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        tracing::info!(run_at = %state.settings.jobs.run_at, "nightly jobs scheduled");
        loop {
            ticker.tick().await;
            let now = state.clock.now().with_timezone(&tz);
            let date = now.date_naive();
            if done == Some(date) || now.time() < run_at {
                continue;
            }
            if retry_at.is_some_and(|at| tokio::time::Instant::now() < at) {
                continue;
            }
            if run_day(&state, date).await {
                done = Some(date);
                retry_at = None;
            } else {
                retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
            }
        }
    })
}

/// How often the frequent jobs run.
const FREQUENT_EVERY: Duration = Duration::from_secs(5 * 60);

/// Starts the frequent schedule (`jobs.enabled`): every FREQUENT_EVERY, the booking jobs for
/// today. No lease: each booking is claimed by a conditional UPDATE, so instances running
/// them at the same moment share the work instead of doubling it.
pub fn spawn_frequent(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(FREQUENT_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let date = state.settings.loyalty.calendar().date_of(state.clock.now());
            for name in FREQUENT_JOBS {
                let ctx = JobContext::of(&state);
                match run(&ctx, name, Some(date)).await {
                    Ok(report) if report.counts.values().any(|n| *n > 0) => {
                        tracing::info!(job = name, %date, counts = ?report.counts, "job finished");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(job = name, %date, error = %e.describe(), "job failed; the next tick tries again");
                    }
                }
            }
        }
    })
}

/// Runs the day's jobs that no instance has leased yet; false when one of them must be tried
/// again (it failed, or the lease could not be taken because the cache did not answer).
async fn run_day(state: &AppState, date: NaiveDate) -> bool {
    let mut all_done = true;
    for name in JOBS {
        let key = format!("job:{name}:{date}");
        match state.cache.set_nx(&key, "1", LEASE_TTL).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(job = name, %date, "job skipped: already run or running elsewhere");
                continue;
            }
            Err(e) => {
                tracing::error!(job = name, %date, error = %e, "job not run: cannot take its lease");
                all_done = false;
                continue;
            }
        }
        // Its own task, so that even a panic deep in a dependency only fails this job.
        let task_state = state.clone();
        let job_name = name.to_string();
        let outcome = tokio::spawn(async move {
            let ctx = JobContext::of(&task_state);
            run(&ctx, &job_name, Some(date)).await
        })
        .await;
        let failure = match outcome {
            Ok(Ok(report)) => {
                tracing::info!(job = name, %date, counts = ?report.counts, "job finished");
                continue;
            }
            Ok(Err(e)) => e.describe(),
            Err(e) => format!("the job's task ended abnormally: {e}"),
        };
        tracing::error!(job = name, %date, error = %failure, "job failed; it will be tried again");
        all_done = false;
        // Give the lease back so that this or another instance retries the day's run.
        if let Err(e) = state.cache.delete(&key).await {
            tracing::warn!(job = name, error = %e, "cannot release a job's lease");
        }
    }
    all_done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_job_parses_and_nothing_else_does() {
        for name in JOBS {
            assert_eq!(Job::parse(name).map(Job::name), Some(*name));
        }
        assert_eq!(Job::parse("points_expiry"), None);
        assert_eq!(Job::parse(""), None);
    }

    #[test]
    fn an_empty_body_means_today_and_a_bad_one_is_refused() {
        assert!(parse_body(b"").is_ok_and(|r| r.date.is_none()));
        assert!(parse_body(b" \n").is_ok_and(|r| r.date.is_none()));
        assert_eq!(
            parse_body(br#"{"date": "2026-03-01"}"#)
                .ok()
                .and_then(|r| r.date),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        assert_eq!(
            parse_body(br#"{"date": "01/03/2026"}"#)
                .err()
                .map(|e| e.code().to_string()),
            Some("invalid_body".into())
        );
        assert_eq!(
            parse_body(b"{").err().map(|e| e.code().to_string()),
            Some("invalid_json".into())
        );
        assert!(parse_body(br#"{"day": "2026-03-01"}"#).is_err());
    }
}
