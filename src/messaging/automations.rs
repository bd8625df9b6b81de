//! Daily marketing automations (DESIGN section 7): the birthday greeting and the recall of
//! dormant customers. Both are jobs (`birthday-greetings`, `recall`), run with the nightly jobs
//! and idempotent for a business date; both are off until staff switch them on for a store.
//!
//! A job only queues messages. Consent, the frequency cap and the voucher are the sender's
//! business, so a customer who cannot be reached (no consent, no quota, capped) is skipped
//! there and gets no voucher; and campaigns, which queue through the same outbox, share the
//! same cap.
//!
//! - **Birthday**: customers of an enabled store (their home store) whose birthday is the date
//!   (29 February birthdays on 28 February in other years) get one `birthday` message with the
//!   reference `birthday:{customer}:{year}`, so once a year however often the job runs.
//! - **Recall**: customers of an enabled store whose last visit is more than `dormant_days`
//!   before the date, and who were not sent a recall in the last 90 days, get one `recall`
//!   message with the reference `recall:{customer}:{date}`.
//!
//! The configuration is a setting (`messaging.automations`), one entry per store.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Utc};
use entity::{customer, outbox_message, setting, store};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app_settings;
use crate::audit;
use crate::auth::staff::{Action, Reach, Staff};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::loyalty::jobs::{Counts, JobContext};
use crate::loyalty::rewards;
use crate::outbox;
use crate::state::AppState;

/// The setting that holds every store's automations.
pub const SETTING_KEY: &str = "messaging.automations";
/// A customer recalled this recently is not recalled again.
const RECALL_QUIET_DAYS: i64 = 90;
/// Greetings queued at night go out from 10:00 business time, not at 02:00.
const MESSAGE_HOUR: i64 = 10;
/// Customers read per query.
const PAGE: u64 = 500;
const DEFAULT_DORMANT_DAYS: i64 = 180;
const MAX_VOUCHER_TITLE_CHARS: usize = 20;

// ---------------------------------------------------------------- configuration

/// A voucher given with the message, to those it is actually sent to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherSpec {
    /// Shown to the member, 1 to 20 characters (it also fills the `voucher_title` variable).
    pub title: String,
    /// A cash voucher worth this many fen; absent: a service voucher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_value_fen: Option<i64>,
    /// Usable for this many days after the day it is sent, 1 to 365.
    pub valid_days: i32,
}

impl VoucherSpec {
    /// The voucher kind (`rewards::kind`): a face value makes it a cash voucher.
    pub fn voucher_kind(&self) -> &'static str {
        if self.face_value_fen.is_some() {
            rewards::kind::CASH_VOUCHER
        } else {
            rewards::kind::SERVICE
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BirthdayAutomation {
    pub enabled: bool,
    pub voucher: Option<VoucherSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RecallAutomation {
    pub enabled: bool,
    /// Days since the last visit after which a customer counts as dormant, 30 to 730.
    pub dormant_days: i64,
    pub voucher: Option<VoucherSpec>,
}

impl Default for RecallAutomation {
    fn default() -> Self {
        Self {
            enabled: false,
            dormant_days: DEFAULT_DORMANT_DAYS,
            voucher: None,
        }
    }
}

/// One store's automations; everything is off until switched on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreAutomations {
    pub birthday: BirthdayAutomation,
    pub recall: RecallAutomation,
}

/// Every store's automations, by store id. A store not listed has everything off.
pub async fn load(db: &impl ConnectionTrait) -> Result<BTreeMap<i64, StoreAutomations>, DbErr> {
    let stored: BTreeMap<String, StoreAutomations> = app_settings::get(db, SETTING_KEY)
        .await?
        .unwrap_or_default();
    Ok(stored
        .into_iter()
        .filter_map(|(k, v)| k.parse::<i64>().ok().map(|id| (id, v)))
        .collect())
}

pub(crate) fn check_voucher(field: &str, v: &VoucherSpec) -> Result<(), ApiError> {
    let chars = v.title.trim().chars().count();
    if chars == 0 || chars > MAX_VOUCHER_TITLE_CHARS {
        return Err(ApiError::validation(
            &format!("{field}.title"),
            "礼券名称须为 1 到 20 个字",
        ));
    }
    if !(1..=365).contains(&v.valid_days) {
        return Err(ApiError::validation(
            &format!("{field}.valid_days"),
            "礼券有效天数须在 1 到 365 之间",
        ));
    }
    if v.face_value_fen.is_some_and(|f| f < 0) {
        return Err(ApiError::validation(
            &format!("{field}.face_value_fen"),
            "礼券面值不能为负数",
        ));
    }
    Ok(())
}

fn validate(c: &StoreAutomations) -> Result<(), ApiError> {
    if !(30..=730).contains(&c.recall.dormant_days) {
        return Err(ApiError::validation(
            "recall.dormant_days",
            "沉睡天数须在 30 到 730 之间",
        ));
    }
    if let Some(v) = &c.birthday.voucher {
        check_voucher("birthday.voucher", v)?;
    }
    if let Some(v) = &c.recall.voucher {
        check_voucher("recall.voucher", v)?;
    }
    Ok(())
}

/// The title as stored: trimmed, so the member never sees stray spaces.
fn normalise(mut c: StoreAutomations) -> StoreAutomations {
    for v in [&mut c.birthday.voucher, &mut c.recall.voucher]
        .into_iter()
        .flatten()
    {
        v.title = v.title.trim().to_string();
    }
    c
}

// ---------------------------------------------------------------- staff API

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StoreAutomationsView {
    pub store_id: i64,
    pub store_name: String,
    pub config: StoreAutomations,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AutomationList {
    /// Every store in the caller's reach, by id, with its automations (off when never set).
    pub stores: Vec<StoreAutomationsView>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_automations",
    responses(
        (status = 200, body = AutomationList),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/automations")]
pub async fn list_automations(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::AutomationManage)?;
    let mut query = store::Entity::find().order_by_asc(store::Column::Id);
    if reach != Reach::Chain {
        // A store-bound role sees its own store only; one without a store sees nothing.
        query = query.filter(store::Column::Id.is_in(staff.store_id));
    }
    let stores = query.all(&state.db).await?;
    let mut configs = load(&state.db).await?;
    let stores = stores
        .into_iter()
        .map(|s| StoreAutomationsView {
            config: configs.remove(&s.id).unwrap_or_default(),
            store_id: s.id,
            store_name: s.name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AutomationList { stores }))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_update_automations",
    params(("store_id" = i64, Path, description = "store id")),
    request_body = StoreAutomations,
    responses(
        (status = 200, body = StoreAutomationsView),
        (status = 400, description = "`validation_failed` naming the field (`recall.dormant_days`...)", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "no such store in the caller's reach", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[put("/api/v1/staff/automations/{store_id}")]
pub async fn update_automations(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<StoreAutomations>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::AutomationManage)?;
    let store_id = path.into_inner();
    // Another store's answer is 404, as if it did not exist, so store ids cannot be probed.
    if reach != Reach::Chain && !staff.covers_store(Some(store_id)) {
        return Err(ApiError::not_found("门店"));
    }
    let config = normalise(body.into_inner());
    validate(&config)?;
    let store = store::Entity::find_by_id(store_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("门店"))?;
    let detail = serde_json::to_value(&config).map_err(ApiError::internal)?;
    let actor = staff.clone();
    let stored = config.clone();
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            let mut all = load_for_update(txn).await?;
            all.insert(store_id.to_string(), stored);
            app_settings::put(txn, SETTING_KEY, &all).await?;
            audit::entry("automation.update")
                .by(&actor)
                .target("store", store_id)
                .store(Some(store_id))
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(StoreAutomationsView {
        store_id,
        store_name: store.name,
        config,
    }))
}

/// Every store's entry, with the setting's row locked until the transaction ends, so that two
/// stores saved at the same moment do not overwrite each other's entry. SQLite's write
/// transaction already runs one at a time; PostgreSQL needs the row to exist to lock it.
async fn load_for_update(
    txn: &DatabaseTransaction,
) -> Result<BTreeMap<String, StoreAutomations>, DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        setting::Entity::insert(setting::ActiveModel {
            key: Set(SETTING_KEY.to_string()),
            value: Set(json!({})),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(setting::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        setting::Entity::find_by_id(SETTING_KEY.to_string())
            .lock_exclusive()
            .one(txn)
            .await?;
    }
    Ok(app_settings::get(txn, SETTING_KEY)
        .await?
        .unwrap_or_default())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_automations).service(update_automations);
}

// ---------------------------------------------------------------- jobs

/// When a message queued by the run for `date` may be sent.
fn message_due(ctx: &JobContext<'_>, date: NaiveDate) -> DateTime<Utc> {
    ctx.settings.loyalty.calendar().start_of(date) + Duration::hours(MESSAGE_HOUR)
}

/// The birthdays (as `MM-DD`) greeted on `date`: its own, and 29 February on 28 February of a
/// year without one.
fn birthdays_on(date: NaiveDate) -> Vec<String> {
    let mut days = vec![format!("{:02}-{:02}", date.month(), date.day())];
    let leap = NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some();
    if date.month() == 2 && date.day() == 28 && !leap {
        days.push("02-29".to_string());
    }
    days
}

/// The `MM-DD` of the birthday column, in each backend's dialect.
fn birthday_month_day(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::cust("to_char(birthday, 'MM-DD')"),
        _ => Expr::cust("strftime('%m-%d', birthday)"),
    }
}

/// Names of the given stores.
async fn store_names(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<BTreeMap<i64, String>, DbErr> {
    Ok(store::Entity::find()
        .select_only()
        .column(store::Column::Id)
        .column(store::Column::Name)
        .filter(store::Column::Id.is_in(ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// What the templates and the sender need: names for the message, and the voucher to issue.
fn payload(
    store_id: i64,
    store_name: Option<&String>,
    customer_name: Option<String>,
    voucher: Option<&VoucherSpec>,
) -> Value {
    let mut p = json!({
        "store_id": store_id,
        "store_name": store_name,
        "customer_name": customer_name,
        "voucher": voucher,
    });
    if let (Some(v), Some(obj)) = (voucher, p.as_object_mut()) {
        obj.insert("voucher_title".into(), Value::from(v.title.clone()));
    }
    p
}

fn count_queued(counts: &mut Counts, queued: Result<bool, DbErr>, job: &str, customer_id: i64) {
    match queued {
        Ok(true) => counts.add("queued", 1),
        Ok(false) => counts.add("already_queued", 1),
        Err(e) => {
            counts.add("failed", 1);
            tracing::error!(job, customer_id, error = %e, "cannot queue an automated message");
        }
    }
}

/// Queues the birthday greeting of every customer of an enabled store born on `date`'s day.
pub async fn birthday_greetings(ctx: &JobContext<'_>, date: NaiveDate) -> Result<Counts, ApiError> {
    let mut counts = Counts::new(&["queued", "already_queued", "failed"]);
    let enabled: BTreeMap<i64, Option<VoucherSpec>> = load(ctx.db)
        .await?
        .into_iter()
        .filter(|(_, c)| c.birthday.enabled)
        .map(|(id, c)| (id, c.birthday.voucher))
        .collect();
    if enabled.is_empty() {
        return Ok(counts);
    }
    let names = store_names(ctx.db, enabled.keys().copied().collect()).await?;
    let now = ctx.clock.now();
    let due_at = message_due(ctx, date);
    let month_day = birthday_month_day(ctx.db.get_database_backend());
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, Option<String>, i64)> = customer::Entity::find()
            .select_only()
            .column(customer::Column::Id)
            .column(customer::Column::Name)
            .column(customer::Column::HomeStoreId)
            .filter(customer::Column::HomeStoreId.is_in(enabled.keys().copied()))
            .filter(customer::Column::Birthday.is_not_null())
            .filter(month_day.clone().is_in(birthdays_on(date)))
            .filter(customer::Column::Id.gt(after))
            .order_by_asc(customer::Column::Id)
            .limit(PAGE)
            .into_tuple()
            .all(ctx.db)
            .await?;
        let Some(&(last, _, _)) = page.last() else {
            break;
        };
        after = last;
        for (customer_id, name, store_id) in page {
            let voucher = enabled.get(&store_id).and_then(Option::as_ref);
            let queued = outbox::queue_at(
                ctx.db,
                outbox::kind::BIRTHDAY,
                customer_id,
                format!("birthday:{customer_id}:{}", date.year()),
                payload(store_id, names.get(&store_id), name, voucher),
                due_at,
                now,
            )
            .await;
            count_queued(&mut counts, queued, "birthday-greetings", customer_id);
        }
    }
    Ok(counts)
}

/// Queues a recall for every customer of an enabled store whose last visit is more than the
/// store's `dormant_days` before `date` and who was not sent a recall in the last 90 days.
pub async fn recall(ctx: &JobContext<'_>, date: NaiveDate) -> Result<Counts, ApiError> {
    let mut counts = Counts::new(&["queued", "already_queued", "recently_recalled", "failed"]);
    let enabled: BTreeMap<i64, RecallAutomation> = load(ctx.db)
        .await?
        .into_iter()
        .filter(|(_, c)| c.recall.enabled)
        .map(|(id, c)| (id, c.recall))
        .collect();
    if enabled.is_empty() {
        return Ok(counts);
    }
    let names = store_names(ctx.db, enabled.keys().copied().collect()).await?;
    let calendar = ctx.settings.loyalty.calendar();
    let now = ctx.clock.now();
    let due_at = message_due(ctx, date);
    // Recalls queued from here on count as recent, measured from the date the job runs for.
    let quiet_since = calendar.start_of(date) - Duration::days(RECALL_QUIET_DAYS);
    for (store_id, config) in &enabled {
        let dormant_days = u64::try_from(config.dormant_days).unwrap_or(0);
        let Some(dormant_before) = date.checked_sub_days(Days::new(dormant_days)) else {
            continue;
        };
        let dormant_before = calendar.start_of(dormant_before);
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, Option<String>, Option<DateTime<Utc>>)> = customer::Entity::find()
                .select_only()
                .column(customer::Column::Id)
                .column(customer::Column::Name)
                .column(customer::Column::LastVisitAt)
                .filter(customer::Column::HomeStoreId.eq(*store_id))
                .filter(customer::Column::LastVisitAt.lt(dormant_before))
                .filter(customer::Column::Id.gt(after))
                .order_by_asc(customer::Column::Id)
                .limit(PAGE)
                .into_tuple()
                .all(ctx.db)
                .await?;
            let Some(&(last, _, _)) = page.last() else {
                break;
            };
            after = last;
            let recent: BTreeSet<i64> = outbox_message::Entity::find()
                .select_only()
                .column(outbox_message::Column::CustomerId)
                .filter(outbox_message::Column::Kind.eq(outbox::kind::RECALL))
                .filter(outbox_message::Column::CustomerId.is_in(page.iter().map(|r| r.0)))
                .filter(outbox_message::Column::CreatedAt.gte(quiet_since))
                .into_tuple::<i64>()
                .all(ctx.db)
                .await?
                .into_iter()
                .collect();
            for (customer_id, name, last_visit) in page {
                if recent.contains(&customer_id) {
                    counts.add("recently_recalled", 1);
                    continue;
                }
                let mut p = payload(
                    *store_id,
                    names.get(store_id),
                    name,
                    config.voucher.as_ref(),
                );
                if let (Some(at), Some(obj)) = (last_visit, p.as_object_mut()) {
                    obj.insert(
                        "last_visit_date".into(),
                        Value::from(calendar.date_of(at).to_string()),
                    );
                }
                let queued = outbox::queue_at(
                    ctx.db,
                    outbox::kind::RECALL,
                    customer_id,
                    format!("recall:{customer_id}:{date}"),
                    p,
                    due_at,
                    now,
                )
                .await;
                count_queued(&mut counts, queued, "recall", customer_id);
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn leap_day_birthdays_are_greeted_on_the_28th_of_other_years() {
        assert_eq!(birthdays_on(d(2027, 2, 28)), ["02-28", "02-29"]);
        assert_eq!(birthdays_on(d(2028, 2, 28)), ["02-28"]);
        assert_eq!(birthdays_on(d(2028, 2, 29)), ["02-29"]);
        assert_eq!(birthdays_on(d(2026, 12, 3)), ["12-03"]);
    }

    #[test]
    fn a_config_is_checked_field_by_field() {
        let mut c = StoreAutomations::default();
        assert!(validate(&c).is_ok());
        c.recall.dormant_days = 29;
        assert!(validate(&c).is_err());
        c.recall.dormant_days = 730;
        c.birthday.voucher = Some(VoucherSpec {
            title: " ".into(),
            face_value_fen: None,
            valid_days: 30,
        });
        assert!(validate(&c).is_err());
        c.birthday.voucher = Some(VoucherSpec {
            title: "生日护理体验券".into(),
            face_value_fen: Some(-1),
            valid_days: 30,
        });
        assert!(validate(&c).is_err());
        c.birthday.voucher = Some(VoucherSpec {
            title: "生日护理体验券".into(),
            face_value_fen: Some(0),
            valid_days: 366,
        });
        assert!(validate(&c).is_err());
    }
}
