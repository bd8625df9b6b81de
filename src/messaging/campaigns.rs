//! Campaigns (DESIGN section 7): staff (a manager for their store, an admin for the chain) pick
//! a marketing kind, an audience and optionally a voucher, preview the reach, then start.
//!
//! Starting materialises one outbox row per audience customer (reference
//! `campaign:{id}:{customer}`, `campaign_id` set), so everything the sender already does for
//! marketing kinds applies unchanged: consent, the frequency cap shared with the automations,
//! quota (a customer without it is `skipped no_quota` and costs no WeChat call), and the
//! voucher issued only with a message actually sent. The unique (kind, reference) pair makes a
//! second start add nothing.
//!
//! Pausing parks the campaign's waiting rows in status `paused`, which the sender never claims;
//! resuming puts them back to `pending`; cancelling ends them as `cancelled`. Progress and
//! conversion are read off the outbox rows, so they move while the sender works.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use entity::{
    campaign, consumption, customer, customer_tag, member, message_template, oa_follower,
    outbox_message, store, subscription_quota, tier, wechat_account,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::audit;
use crate::auth::staff::{Action, Reach, Staff};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::messaging::automations::{check_voucher, VoucherSpec};
use crate::messaging::templates::{self, channel, PreviewItem};
use crate::outbox;
use crate::staff::wechat_binding;
use crate::state::AppState;
use crate::wechat::subscriptions::{self, Outgoing, SendError};

/// Customers read (and rows written) per query.
const PAGE: u64 = 500;
const DEFAULT_DORMANT_DAYS: i64 = 180;
/// A message converts when its customer pays within this many days of it being sent.
const CONVERSION_DAYS: i64 = 30;
const SAMPLES: usize = 3;
const MAX_NAME_CHARS: usize = 50;
/// Shown for a customer without a name, as the sender does.
const NAMELESS: &str = "会员";

pub mod status {
    pub const DRAFT: &str = "draft";
    pub const SCHEDULED: &str = "scheduled";
    pub const RUNNING: &str = "running";
    pub const PAUSED: &str = "paused";
    pub const COMPLETED: &str = "completed";
    pub const CANCELLED: &str = "cancelled";
}

// ---------------------------------------------------------------- audience

/// Who a campaign goes to; every filter given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Audience {
    /// Birthdays from this `MM-DD` (a birthday campaign needs both ends; the range may wrap
    /// the year, 12-20..01-10).
    pub birthday_from: Option<String>,
    pub birthday_to: Option<String>,
    /// No visit for this many days, 30 to 730 (a recall campaign: 180 when absent).
    pub dormant_days: Option<i64>,
    /// Customers carrying any of these tags.
    pub tags: Vec<String>,
    /// Members of any of these tier codes (normal, gold...).
    pub tiers: Vec<String>,
    /// Members only (else every customer).
    pub members_only: bool,
}

fn month_day(s: &str) -> Option<String> {
    // 2000 is a leap year, so 02-29 is a valid birthday.
    NaiveDate::parse_from_str(&format!("2000-{s}"), "%Y-%m-%d")
        .ok()
        .map(|d| format!("{:02}-{:02}", d.month(), d.day()))
}

/// Checks the audience for `kind` and fills its defaults.
fn validate_audience(kind: &str, mut a: Audience) -> Result<Audience, ApiError> {
    let bad_day = |field: &str| ApiError::validation(field, "生日日期须为 MM-DD 格式，如 06-15");
    for (field, value) in [
        ("audience.birthday_from", &mut a.birthday_from),
        ("audience.birthday_to", &mut a.birthday_to),
    ] {
        if let Some(v) = value {
            *value = Some(month_day(v.trim()).ok_or_else(|| bad_day(field))?);
        }
    }
    if a.birthday_from.is_some() != a.birthday_to.is_some() {
        let field = if a.birthday_from.is_none() {
            "audience.birthday_from"
        } else {
            "audience.birthday_to"
        };
        return Err(ApiError::validation(field, "生日范围须同时填写起止日期"));
    }
    if kind == outbox::kind::BIRTHDAY && a.birthday_from.is_none() {
        return Err(ApiError::validation(
            "audience.birthday_from",
            "生日活动须填写生日范围",
        ));
    }
    if kind == outbox::kind::RECALL && a.dormant_days.is_none() {
        a.dormant_days = Some(DEFAULT_DORMANT_DAYS);
    }
    if a.dormant_days.is_some_and(|d| !(30..=730).contains(&d)) {
        return Err(ApiError::validation(
            "audience.dormant_days",
            "沉睡天数须在 30 到 730 之间",
        ));
    }
    a.tags = clean(a.tags);
    a.tiers = clean(a.tiers);
    Ok(a)
}

fn clean(v: Vec<String>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The customers a campaign of `store_id` with `audience` reaches at `now`.
async fn audience_condition(
    db: &impl ConnectionTrait,
    store_id: Option<i64>,
    a: &Audience,
    now: DateTime<Utc>,
) -> Result<Condition, DbErr> {
    let mut cond = Condition::all();
    if let Some(store_id) = store_id {
        cond = cond.add(customer::Column::HomeStoreId.eq(store_id));
    }
    if let (Some(from), Some(to)) = (&a.birthday_from, &a.birthday_to) {
        let md = match db.get_database_backend() {
            DbBackend::Postgres => Expr::cust("to_char(birthday, 'MM-DD')"),
            _ => Expr::cust("strftime('%m-%d', birthday)"),
        };
        cond = cond.add(customer::Column::Birthday.is_not_null());
        cond = if from <= to {
            cond.add(md.clone().gte(from.clone()))
                .add(md.lte(to.clone()))
        } else {
            // The range wraps the new year.
            cond.add(
                Condition::any()
                    .add(md.clone().gte(from.clone()))
                    .add(md.lte(to.clone())),
            )
        };
    }
    if let Some(days) = a.dormant_days {
        // As the recall automation: a customer never seen has no visit to be dormant since.
        cond = cond.add(customer::Column::LastVisitAt.lt(now - Duration::days(days)));
    }
    if !a.tags.is_empty() {
        cond = cond.add(
            customer::Column::Id.in_subquery(
                Query::select()
                    .column(customer_tag::Column::CustomerId)
                    .from(customer_tag::Entity)
                    .and_where(customer_tag::Column::Tag.is_in(a.tags.clone()))
                    .to_owned(),
            ),
        );
    }
    if !a.tiers.is_empty() {
        let tier_ids: Vec<i64> = tier::Entity::find()
            .select_only()
            .column(tier::Column::Id)
            .filter(tier::Column::Code.is_in(a.tiers.clone()))
            .into_tuple()
            .all(db)
            .await?;
        cond = cond.add(
            customer::Column::Id.in_subquery(
                Query::select()
                    .column(member::Column::CustomerId)
                    .from(member::Entity)
                    .and_where(member::Column::TierId.is_in(tier_ids))
                    .to_owned(),
            ),
        );
    } else if a.members_only {
        cond = cond.add(
            customer::Column::Id.in_subquery(
                Query::select()
                    .column(member::Column::CustomerId)
                    .from(member::Entity)
                    .to_owned(),
            ),
        );
    }
    Ok(cond)
}

/// One audience customer: what its message needs.
struct Recipient {
    id: i64,
    name: Option<String>,
    home_store_id: Option<i64>,
    last_visit_at: Option<DateTime<Utc>>,
}

/// A customer row as read for an audience: id, name, home store, last visit.
type RecipientRow = (i64, Option<String>, Option<i64>, Option<DateTime<Utc>>);

/// The audience, a page at a time after customer id `after`.
async fn audience_page(
    db: &impl ConnectionTrait,
    cond: &Condition,
    after: i64,
    limit: u64,
) -> Result<Vec<Recipient>, DbErr> {
    let rows: Vec<RecipientRow> = customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::Name)
        .column(customer::Column::HomeStoreId)
        .column(customer::Column::LastVisitAt)
        .filter(cond.clone())
        .filter(customer::Column::Id.gt(after))
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, home_store_id, last_visit_at)| Recipient {
            id,
            name,
            home_store_id,
            last_visit_at,
        })
        .collect())
}

// ---------------------------------------------------------------- views

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// `birthday`, `recall` or `custom`.
    pub kind: String,
    /// 1 to 50 characters.
    pub name: String,
    /// The store whose customers it reaches; absent: the caller's store (a manager) or the
    /// whole chain (an admin).
    #[serde(default)]
    pub store_id: Option<i64>,
    #[serde(default)]
    pub audience: Audience,
    #[serde(default)]
    pub voucher: Option<VoucherSpec>,
    /// Send from this instant; absent: as soon as it is started.
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct OutcomeCount {
    pub status: String,
    pub reason: Option<String>,
    pub count: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Messages written for the campaign.
    pub total: i64,
    /// By status: pending, sending, sent, skipped, failed, deferred, paused, cancelled.
    pub by_status: BTreeMap<String, i64>,
    /// By status and reason (`skipped` / `no_quota`...).
    pub outcomes: Vec<OutcomeCount>,
    /// Sent messages WeChat later reported as delivered to the member, and as not delivered.
    pub delivered: i64,
    pub delivery_failed: i64,
    /// Sent through the 服务号 (the second channel) rather than as subscribe messages.
    pub via_official_account: i64,
    /// Sent messages whose customer paid within 30 days after.
    pub converted: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    pub id: i64,
    pub store_id: Option<i64>,
    pub kind: String,
    pub name: String,
    pub audience: Audience,
    pub voucher: Option<VoucherSpec>,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// draft, scheduled, running, paused, completed, cancelled.
    pub status: String,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Absent in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SampleMessage {
    pub customer_id: i64,
    pub customer_name: String,
    pub items: Vec<PreviewItem>,
    /// Why this customer's message could not be filled.
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CampaignPreview {
    pub audience: i64,
    /// With a mini-program account (anyone else cannot be messaged).
    pub with_account: i64,
    /// Whose account consents to marketing.
    pub consented: i64,
    /// Whose account has quota left for the kind's template.
    pub with_quota: i64,
    /// Consenting, without quota, but following the 服务号 (when the kind has a template
    /// there): reached through it instead.
    pub via_official_account: i64,
    /// Consenting and with quota or following: at most this many are sent (the frequency cap
    /// may skip more).
    pub reachable: i64,
    /// The WeChat template the kind resolves to; empty: not configured.
    pub template_id: String,
    pub samples: Vec<SampleMessage>,
}

fn view(m: campaign::Model, progress: Option<Progress>) -> CampaignView {
    CampaignView {
        audience: serde_json::from_str(&m.audience).unwrap_or_default(),
        voucher: m
            .voucher
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok()),
        id: m.id,
        store_id: m.store_id,
        kind: m.kind,
        name: m.name,
        scheduled_at: m.scheduled_at,
        status: m.status,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        started_at: m.started_at,
        completed_at: m.completed_at,
        progress,
    }
}

// ---------------------------------------------------------------- reading

/// The campaign, if the caller may see it: another store's answers 404, as if it did not exist.
async fn find(
    db: &impl ConnectionTrait,
    staff: &Staff,
    reach: Reach,
    id: i64,
) -> Result<campaign::Model, ApiError> {
    let m = campaign::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("活动"))?;
    if reach != Reach::Chain && (m.store_id.is_none() || !staff.covers_store(m.store_id)) {
        return Err(ApiError::not_found("活动"));
    }
    Ok(m)
}

async fn progress(db: &impl ConnectionTrait, id: i64) -> Result<Progress, DbErr> {
    let rows: Vec<(String, Option<String>, i64)> = outbox_message::Entity::find()
        .select_only()
        .column(outbox_message::Column::Status)
        .column(outbox_message::Column::Reason)
        .column_as(outbox_message::Column::Id.count(), "n")
        .filter(outbox_message::Column::CampaignId.eq(id))
        .group_by(outbox_message::Column::Status)
        .group_by(outbox_message::Column::Reason)
        .into_tuple()
        .all(db)
        .await?;
    let mut p = Progress::default();
    for (status, reason, count) in rows {
        p.total += count;
        *p.by_status.entry(status.clone()).or_default() += count;
        p.outcomes.push(OutcomeCount {
            status,
            reason,
            count,
        });
    }
    p.outcomes
        .sort_by(|a, b| (&a.status, &a.reason).cmp(&(&b.status, &b.reason)));
    let sent: Vec<(Option<String>, Option<String>, i64)> = outbox_message::Entity::find()
        .select_only()
        .column(outbox_message::Column::Delivery)
        .column(outbox_message::Column::Channel)
        .column_as(outbox_message::Column::Id.count(), "n")
        .filter(outbox_message::Column::CampaignId.eq(id))
        .filter(outbox_message::Column::Status.eq("sent"))
        .group_by(outbox_message::Column::Delivery)
        .group_by(outbox_message::Column::Channel)
        .into_tuple()
        .all(db)
        .await?;
    for (delivery, via, count) in sent {
        match delivery.as_deref() {
            Some("delivered") => p.delivered += count,
            Some("failed") => p.delivery_failed += count,
            _ => {}
        }
        if via.as_deref() == Some(channel::OA_TEMPLATE) {
            p.via_official_account += count;
        }
    }
    p.converted = converted(db, id).await?;
    Ok(p)
}

/// Sent messages whose customer has a paid consumption within 30 days after the send. Counted
/// in Rust over the sent rows, which keeps the date arithmetic out of two SQL dialects.
async fn converted(db: &impl ConnectionTrait, id: i64) -> Result<i64, DbErr> {
    let sent: Vec<(i64, Option<DateTime<Utc>>)> = outbox_message::Entity::find()
        .select_only()
        .column(outbox_message::Column::CustomerId)
        .column(outbox_message::Column::SentAt)
        .filter(outbox_message::Column::CampaignId.eq(id))
        .filter(outbox_message::Column::Status.eq("sent"))
        .into_tuple()
        .all(db)
        .await?;
    let mut total = 0;
    for chunk in sent.chunks(500) {
        let sent_at: HashMap<i64, DateTime<Utc>> = chunk
            .iter()
            .filter_map(|(c, at)| at.map(|at| (*c, at)))
            .collect();
        let Some(earliest) = sent_at.values().min().copied() else {
            continue;
        };
        let paid: Vec<(i64, DateTime<Utc>)> = consumption::Entity::find()
            .select_only()
            .column(consumption::Column::CustomerId)
            .column(consumption::Column::OccurredAt)
            .filter(consumption::Column::CustomerId.is_in(sent_at.keys().copied()))
            .filter(consumption::Column::PaidFen.gt(0))
            .filter(consumption::Column::OccurredAt.gte(earliest))
            .into_tuple()
            .all(db)
            .await?;
        let converted: BTreeSet<i64> = paid
            .into_iter()
            .filter(|(c, at)| {
                sent_at
                    .get(c)
                    .is_some_and(|s| *at >= *s && *at <= *s + Duration::days(CONVERSION_DAYS))
            })
            .map(|(c, _)| c)
            .collect();
        total += i64::try_from(converted.len()).unwrap_or(i64::MAX);
    }
    Ok(total)
}

/// Statuses of rows still to be sent (or parked).
const OPEN_ROWS: [&str; 4] = ["pending", "deferred", "sending", "paused"];

/// The detail with progress; a started campaign whose rows are all final is marked completed
/// here, on reading, which spares the sender from knowing about campaigns.
async fn detail(
    db: &impl ConnectionTrait,
    mut m: campaign::Model,
    now: DateTime<Utc>,
) -> Result<CampaignView, DbErr> {
    if m.status == status::SCHEDULED && m.scheduled_at.is_none_or(|at| at <= now) {
        m.status = status::RUNNING.to_string();
    }
    let p = progress(db, m.id).await?;
    let open: i64 = OPEN_ROWS
        .iter()
        .map(|s| p.by_status.get(*s).copied().unwrap_or(0))
        .sum();
    if m.status == status::RUNNING && open == 0 {
        let done = campaign::Entity::update_many()
            .col_expr(campaign::Column::Status, Expr::value(status::COMPLETED))
            .col_expr(campaign::Column::CompletedAt, Expr::value(now))
            .col_expr(campaign::Column::UpdatedAt, Expr::value(now))
            .filter(campaign::Column::Id.eq(m.id))
            .filter(campaign::Column::Status.is_in([status::RUNNING, status::SCHEDULED]))
            .exec(db)
            .await?;
        if done.rows_affected > 0 {
            m.status = status::COMPLETED.to_string();
            m.completed_at = Some(now);
            m.updated_at = now;
        } else if let Some(fresh) = campaign::Entity::find_by_id(m.id).one(db).await? {
            m = fresh;
        }
    }
    Ok(view(m, Some(p)))
}

// ---------------------------------------------------------------- staff API

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_campaigns",
    responses(
        (status = 200, body = CampaignList),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/campaigns")]
pub async fn list_campaigns(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let mut query = campaign::Entity::find().order_by_desc(campaign::Column::Id);
    if reach != Reach::Chain {
        // A manager sees their store's campaigns, not the chain-wide ones.
        query = query.filter(campaign::Column::StoreId.is_in(staff.store_id));
    }
    let now = state.clock.now();
    let mut campaigns = Vec::new();
    for m in query.limit(200).all(&state.db).await? {
        // A running (or due) campaign may have finished since it was last read: the list
        // shows the same status the detail would.
        let v = if [status::RUNNING, status::SCHEDULED].contains(&m.status.as_str()) {
            CampaignView {
                progress: None,
                ..detail(&state.db, m, now).await?
            }
        } else {
            view(m, None)
        };
        campaigns.push(v);
    }
    Ok(HttpResponse::Ok().json(CampaignList { campaigns }))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_create_campaign",
    request_body = CampaignInput,
    responses(
        (status = 201, body = CampaignView),
        (status = 400, description = "`validation_failed` naming the field (`audience.dormant_days`...)", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "no such store in the caller's reach", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns")]
pub async fn create_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<CampaignInput>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let input = body.into_inner();
    if !outbox::kind::is_marketing(&input.kind) {
        return Err(ApiError::validation(
            "kind",
            "活动类型须为 birthday、recall 或 custom",
        ));
    }
    let name = input.name.trim().to_string();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(ApiError::validation("name", "活动名称须为 1 到 50 个字"));
    }
    let store_id = match (reach, input.store_id) {
        (Reach::Chain, s) => s,
        // A manager's campaign is their store's; naming another answers 404.
        (_, None) => staff.store_id,
        (_, Some(s)) if staff.covers_store(Some(s)) => Some(s),
        _ => return Err(ApiError::not_found("门店")),
    };
    if store_id.is_none() && reach != Reach::Chain {
        return Err(ApiError::not_found("门店"));
    }
    if let Some(s) = store_id {
        store::Entity::find_by_id(s)
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found("门店"))?;
    }
    let audience = validate_audience(&input.kind, input.audience)?;
    if !audience.tiers.is_empty() {
        let known: BTreeSet<String> = tier::Entity::find()
            .select_only()
            .column(tier::Column::Code)
            .into_tuple()
            .all(&state.db)
            .await?
            .into_iter()
            .collect();
        if audience.tiers.iter().any(|t| !known.contains(t)) {
            return Err(ApiError::validation("audience.tiers", "会员等级不存在"));
        }
    }
    let voucher = match input.voucher {
        Some(mut v) => {
            v.title = v.title.trim().to_string();
            check_voucher("voucher", &v)?;
            Some(v)
        }
        None => None,
    };
    let now = state.clock.now();
    let audience_json = serde_json::to_string(&audience).map_err(ApiError::internal)?;
    let voucher_json = voucher
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(ApiError::internal)?;
    let actor = staff.clone();
    let kind = input.kind.clone();
    let scheduled_at = input.scheduled_at;
    let created = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let m = campaign::ActiveModel {
                store_id: Set(store_id),
                kind: Set(kind),
                name: Set(name),
                audience: Set(audience_json),
                voucher: Set(voucher_json),
                scheduled_at: Set(scheduled_at),
                status: Set(status::DRAFT.to_string()),
                created_by: Set(actor.id),
                created_at: Set(now),
                updated_at: Set(now),
                started_at: Set(None),
                completed_at: Set(None),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            audit::entry("campaign.create")
                .by(&actor)
                .target("campaign", m.id)
                .store(m.store_id)
                .detail(json!({"kind": m.kind, "name": m.name}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(m)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view(created, Some(Progress::default()))))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_get_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, body = CampaignView),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/campaigns/{id}")]
pub async fn get_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let m = find(&state.db, &staff, reach, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(detail(&state.db, m, state.clock.now()).await?))
}

/// The voucher the campaign attaches, as saved with it.
fn stored_voucher(m: &campaign::Model) -> Result<Option<VoucherSpec>, ApiError> {
    m.voucher
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(ApiError::internal)
}

/// The template the sender would use for `kind`: the saved active one, else the default.
/// (WeChat's template id, the keyword expressions, the page.)
async fn resolve_template(
    state: &AppState,
    kind: &str,
) -> Result<Option<(String, String, Option<String>)>, ApiError> {
    let Some(spec) = templates::spec(kind) else {
        return Ok(None);
    };
    let stored = message_template::Entity::find()
        .filter(message_template::Column::Kind.eq(kind))
        .filter(message_template::Column::Channel.eq(channel::SUBSCRIBE))
        .filter(message_template::Column::Active.eq(true))
        .one(&state.db)
        .await?;
    Ok(Some(match stored {
        Some(t) => (t.template_id, t.keywords, t.page),
        None => {
            let d =
                templates::default_view(spec, state.sandbox.is_some(), state.settings.loyalty.tz());
            let keywords = serde_json::to_string(&d.keywords).map_err(ApiError::internal)?;
            (d.template_id, keywords, d.page)
        }
    }))
}

/// What a campaign message's payload carries: the names the templates use and the voucher the
/// sender issues when (and only when) it is sent, exactly as the automations queue it.
fn payload(
    m: &campaign::Model,
    r: &Recipient,
    store_names: &BTreeMap<i64, String>,
    voucher: Option<&VoucherSpec>,
    tz: chrono_tz::Tz,
) -> Value {
    let store_id = r.home_store_id.or(m.store_id);
    let mut p = json!({
        "campaign_id": m.id,
        "store_id": store_id,
        "store_name": store_id.and_then(|s| store_names.get(&s)),
        "customer_name": r.name,
        "voucher": voucher,
    });
    if let Some(obj) = p.as_object_mut() {
        if let Some(v) = voucher {
            obj.insert("voucher_title".into(), Value::from(v.title.clone()));
        }
        if let Some(at) = r.last_visit_at {
            obj.insert(
                "last_visit_date".into(),
                Value::from(at.with_timezone(&tz).date_naive().to_string()),
            );
        }
    }
    p
}

async fn all_store_names(db: &impl ConnectionTrait) -> Result<BTreeMap<i64, String>, DbErr> {
    Ok(store::Entity::find()
        .select_only()
        .column(store::Column::Id)
        .column(store::Column::Name)
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_preview_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, body = CampaignPreview),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns/{id}/preview")]
pub async fn preview_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let m = find(&state.db, &staff, reach, path.into_inner()).await?;
    let audience: Audience = serde_json::from_str(&m.audience).map_err(ApiError::internal)?;
    let voucher = stored_voucher(&m)?;
    let (template_id, keywords, _) = resolve_template(&state, &m.kind).await?.unwrap_or_default();
    let tz = state.settings.loyalty.tz();
    let names = all_store_names(&state.db).await?;
    let cond = audience_condition(&state.db, m.store_id, &audience, state.clock.now()).await?;
    let appid = state.wechat.appid().to_string();
    // The sender's second channel: only with a 服务号 and a template of the kind there.
    let oa_ready = state.oa.is_some()
        && message_template::Entity::find()
            .filter(message_template::Column::Kind.eq(&m.kind))
            .filter(message_template::Column::Channel.eq(channel::OA_TEMPLATE))
            .filter(message_template::Column::Active.eq(true))
            .one(&state.db)
            .await?
            .is_some_and(|t| !t.template_id.trim().is_empty());
    let mut out = CampaignPreview {
        audience: 0,
        with_account: 0,
        consented: 0,
        with_quota: 0,
        via_official_account: 0,
        reachable: 0,
        template_id: template_id.clone(),
        samples: Vec::new(),
    };
    let mut after = 0;
    loop {
        let page = audience_page(&state.db, &cond, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        out.audience += i64::try_from(page.len()).unwrap_or(0);
        // The account the sender would use: the customer's most recently signed-in one.
        let accounts: Vec<(i64, Option<i64>, bool, Option<String>)> =
            wechat_account::Entity::find()
                .select_only()
                .column(wechat_account::Column::Id)
                .column(wechat_account::Column::CustomerId)
                .column(wechat_account::Column::ConsentMarketing)
                .column(wechat_account::Column::Unionid)
                .filter(wechat_account::Column::Appid.eq(appid.clone()))
                .filter(wechat_account::Column::CustomerId.is_in(page.iter().map(|r| r.id)))
                .order_by_desc(wechat_account::Column::LastLoginAt)
                .into_tuple()
                .all(&state.db)
                .await?;
        let mut by_customer: HashMap<i64, (i64, bool, Option<String>)> = HashMap::new();
        for (account, customer, consent, unionid) in accounts {
            if let Some(c) = customer {
                by_customer.entry(c).or_insert((account, consent, unionid));
            }
        }
        let following: BTreeSet<String> = if oa_ready {
            oa_follower::Entity::find()
                .select_only()
                .column(oa_follower::Column::Unionid)
                .filter(oa_follower::Column::Following.eq(true))
                .filter(
                    oa_follower::Column::Unionid
                        .is_in(by_customer.values().filter_map(|(_, _, u)| u.clone())),
                )
                .into_tuple::<Option<String>>()
                .all(&state.db)
                .await?
                .into_iter()
                .flatten()
                .collect()
        } else {
            BTreeSet::new()
        };
        let with_quota: BTreeSet<i64> = subscription_quota::Entity::find()
            .select_only()
            .column(subscription_quota::Column::WechatAccountId)
            .filter(
                subscription_quota::Column::WechatAccountId
                    .is_in(by_customer.values().map(|(a, _, _)| *a)),
            )
            .filter(subscription_quota::Column::TemplateId.eq(template_id.clone()))
            .filter(subscription_quota::Column::Remaining.gt(0))
            .into_tuple::<i64>()
            .all(&state.db)
            .await?
            .into_iter()
            .collect();
        for (account, consent, unionid) in by_customer.values() {
            out.with_account += 1;
            let quota = !template_id.is_empty() && with_quota.contains(account);
            let follows = !quota && unionid.as_ref().is_some_and(|u| following.contains(u));
            out.consented += i64::from(*consent);
            out.with_quota += i64::from(quota);
            out.via_official_account += i64::from(*consent && follows);
            out.reachable += i64::from(*consent && (quota || follows));
        }
        for r in page.iter().take(SAMPLES.saturating_sub(out.samples.len())) {
            let p = payload(&m, r, &names, voucher.as_ref(), tz);
            let mut vars: Map<String, Value> = templates::payload_vars(&m.kind, &p);
            let name = r
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| NAMELESS.to_string());
            vars.insert("customer_name".into(), Value::from(name.clone()));
            let (items, error) = match templates::render(&m.kind, &keywords, &vars, tz) {
                Ok(items) => (
                    items
                        .into_iter()
                        .map(|(keyword, value)| PreviewItem { keyword, value })
                        .collect(),
                    None,
                ),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            out.samples.push(SampleMessage {
                customer_id: r.id,
                customer_name: name,
                items,
                error,
            });
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TestSent {
    pub msgid: String,
    pub template_id: String,
    /// What the message said.
    pub items: Vec<PreviewItem>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_test_send_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, description = "Sent to the caller's own WeChat", body = TestSent),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`wechat_not_bound` (bind your WeChat first), `no_template`, `no_quota` (subscribe to the template in the mini-program first)", body = ErrorEnvelope),
        (status = 422, description = "`template_invalid`: the message could not be filled", body = ErrorEnvelope),
        (status = 502, description = "`wechat_error`", body = ErrorEnvelope),
        (status = 503, description = "`wechat_unavailable`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns/{id}/test-send")]
pub async fn test_send_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let m = find(&state.db, &staff, reach, path.into_inner()).await?;
    let Some(account) = wechat_binding::bound_account(&state, staff.id).await? else {
        return Err(ApiError::conflict(
            "wechat_not_bound",
            "请先绑定您本人的微信：在后台生成绑定码，用小程序扫码",
        ));
    };
    let (template_id, keywords, page) =
        resolve_template(&state, &m.kind).await?.unwrap_or_default();
    if template_id.trim().is_empty() {
        return Err(ApiError::conflict(
            "no_template",
            "该类消息还没有配置微信模板，请先在模板管理中设置",
        ));
    }
    let voucher = stored_voucher(&m)?;
    // Filled as for a customer of the campaign's store, greeting the member of staff.
    let tz = state.settings.loyalty.tz();
    let store_id = m.store_id.or(staff.store_id);
    let names = all_store_names(&state.db).await?;
    let p = json!({
        "campaign_id": m.id,
        "store_id": store_id,
        "store_name": store_id.and_then(|s| names.get(&s)),
        "customer_name": staff.display_name,
        "voucher": voucher,
        "voucher_title": voucher.as_ref().map(|v| v.title.clone()),
        "last_visit_date": state.clock.now().with_timezone(&tz).date_naive().to_string(),
    });
    let mut vars = templates::payload_vars(&m.kind, &p);
    vars.insert(
        "customer_name".into(),
        Value::from(staff.display_name.clone()),
    );
    if let Some(name) = store_id.and_then(|s| names.get(&s)) {
        vars.insert("store_name".into(), Value::from(name.clone()));
    }
    let invalid = |e: String| {
        ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "template_invalid",
            format!("消息无法生成：{e}"),
        )
    };
    let items =
        templates::render(&m.kind, &keywords, &vars, tz).map_err(|e| invalid(e.to_string()))?;
    let page = page
        .map(|p| templates::render_page(&m.kind, &p, &vars))
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let data: Vec<(&str, String)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let msg = Outgoing {
        account_id: account.id,
        openid: &account.openid,
        template_id: &template_id,
        page: page.as_deref(),
        data: &data,
    };
    let msgid = match subscriptions::send(&state.db, &state.wechat, &msg).await {
        Ok(msgid) => msgid,
        Err(SendError::NoQuota | SendError::Refused) => {
            return Err(ApiError::conflict(
                "no_quota",
                "您的微信没有该消息的订阅次数：请先在小程序中订阅该消息后再试",
            ))
        }
        Err(SendError::InvalidValue(e)) => return Err(invalid(e.to_string())),
        Err(SendError::Db(e)) => return Err(e.into()),
        Err(SendError::Wechat(e)) if e.is_unavailable() => {
            tracing::warn!(error = %e, "test message: WeChat unavailable");
            return Err(ApiError::unavailable(
                "wechat_unavailable",
                "微信服务暂不可用，请稍后再试",
            ));
        }
        Err(SendError::Wechat(e)) => {
            tracing::warn!(error = %e, "test message refused by WeChat");
            return Err(ApiError::new(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "wechat_error",
                format!("微信拒绝了这条消息（{}）", e.code().unwrap_or_default()),
            ));
        }
    };
    let actor = staff.clone();
    let (id, store, sent_template) = (m.id, m.store_id, template_id.clone());
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            audit::entry("campaign.test_send")
                .by(&actor)
                .target("campaign", id)
                .store(store)
                .detail(json!({"template_id": sent_template}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(TestSent {
        msgid,
        template_id,
        items: items
            .into_iter()
            .map(|(keyword, value)| PreviewItem { keyword, value })
            .collect(),
    }))
}

/// Moves the campaign from one of `from` to `to`, with the row-status change that goes with it,
/// in one transaction; 409 when the campaign is in no state to.
async fn transition(
    state: &AppState,
    staff: &Staff,
    id: i64,
    action: &'static str,
    from: &'static [&'static str],
    rows_from: &'static [&'static str],
    rows_to: &'static str,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let m = find(&state.db, staff, reach, id).await?;
    let now = state.clock.now();
    let to = match action {
        "campaign.pause" => status::PAUSED,
        "campaign.cancel" => status::CANCELLED,
        // Resumed: waiting for its time again if that has not come.
        _ if m.scheduled_at.is_some_and(|at| at > now) => status::SCHEDULED,
        _ => status::RUNNING,
    };
    let actor = staff.clone();
    let moved = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let done = campaign::Entity::update_many()
                .col_expr(campaign::Column::Status, Expr::value(to))
                .col_expr(campaign::Column::UpdatedAt, Expr::value(now))
                .filter(campaign::Column::Id.eq(id))
                .filter(campaign::Column::Status.is_in(from.iter().copied()))
                .exec(txn)
                .await?;
            if done.rows_affected == 0 {
                return Ok::<_, ApiError>(false);
            }
            // Rows a sender holds (`sending`) finish as they are; only waiting rows move.
            let rows = outbox_message::Entity::update_many()
                .col_expr(outbox_message::Column::Status, Expr::value(rows_to))
                .filter(outbox_message::Column::CampaignId.eq(id))
                .filter(outbox_message::Column::Status.is_in(rows_from.iter().copied()))
                .exec(txn)
                .await?;
            audit::entry(action)
                .by(&actor)
                .target("campaign", id)
                .store(m.store_id)
                .detail(json!({"messages": rows.rows_affected}))
                .write(txn)
                .await?;
            Ok(true)
        })
    })
    .await?;
    if !moved {
        return Err(ApiError::conflict(
            "campaign_state",
            "活动当前状态不允许此操作",
        ));
    }
    let m = find(&state.db, staff, reach, id).await?;
    Ok(HttpResponse::Ok().json(detail(&state.db, m, now).await?))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_start_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, description = "started (or already started: nothing is added)", body = CampaignView),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`campaign_state`: cancelled or paused", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns/{id}/start")]
pub async fn start_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::CampaignManage)?;
    let id = path.into_inner();
    let m = find(&state.db, &staff, reach, id).await?;
    let now = state.clock.now();
    match m.status.as_str() {
        status::DRAFT => {}
        // Starting again adds nothing: the audience was written once, at the first start.
        status::SCHEDULED | status::RUNNING | status::COMPLETED => {
            return Ok(HttpResponse::Ok().json(detail(&state.db, m, now).await?));
        }
        _ => {
            return Err(ApiError::conflict(
                "campaign_state",
                "活动已暂停或已取消，不能开始",
            ))
        }
    }
    let audience: Audience = serde_json::from_str(&m.audience).map_err(ApiError::internal)?;
    let voucher = stored_voucher(&m)?;
    let due_at = m.scheduled_at.filter(|at| *at > now).unwrap_or(now);
    let to = if due_at > now {
        status::SCHEDULED
    } else {
        status::RUNNING
    };
    let tz = state.settings.loyalty.tz();
    let actor = staff.clone();
    let queued = db::write(&state.db, move |txn| {
        Box::pin(async move {
            // The conditional UPDATE admits one starter; a concurrent start writes nothing.
            let done = campaign::Entity::update_many()
                .col_expr(campaign::Column::Status, Expr::value(to))
                .col_expr(campaign::Column::StartedAt, Expr::value(now))
                .col_expr(campaign::Column::UpdatedAt, Expr::value(now))
                .filter(campaign::Column::Id.eq(id))
                .filter(campaign::Column::Status.eq(status::DRAFT))
                .exec(txn)
                .await?;
            if done.rows_affected == 0 {
                return Ok::<_, ApiError>(0u64);
            }
            let names = all_store_names(txn).await?;
            let cond = audience_condition(txn, m.store_id, &audience, now).await?;
            let mut queued = 0u64;
            let mut after = 0;
            loop {
                let page = audience_page(txn, &cond, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                let rows = page.iter().map(|r| outbox_message::ActiveModel {
                    kind: Set(m.kind.clone()),
                    customer_id: Set(r.id),
                    reference: Set(format!("campaign:{id}:{}", r.id)),
                    payload: Set(payload(&m, r, &names, voucher.as_ref(), tz).to_string()),
                    status: Set("pending".into()),
                    due_at: Set(due_at),
                    created_at: Set(now),
                    attempts: Set(0),
                    campaign_id: Set(Some(id)),
                    ..Default::default()
                });
                // Unique (kind, reference): a row already written is left as it is.
                queued += outbox_message::Entity::insert_many(rows)
                    .on_conflict(
                        OnConflict::columns([
                            outbox_message::Column::Kind,
                            outbox_message::Column::Reference,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(txn)
                    .await?;
            }
            audit::entry("campaign.start")
                .by(&actor)
                .target("campaign", id)
                .store(m.store_id)
                .detail(json!({"messages": queued}))
                .write(txn)
                .await?;
            Ok(queued)
        })
    })
    .await?;
    tracing::info!(campaign_id = id, queued, "campaign started");
    let m = find(&state.db, &staff, reach, id).await?;
    Ok(HttpResponse::Ok().json(detail(&state.db, m, now).await?))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_pause_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, body = CampaignView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`campaign_state`: not running", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns/{id}/pause")]
pub async fn pause_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    transition(
        &state,
        &staff,
        path.into_inner(),
        "campaign.pause",
        &[status::RUNNING, status::SCHEDULED],
        &["pending", "deferred"],
        "paused",
    )
    .await
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_resume_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, body = CampaignView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`campaign_state`: not paused", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns/{id}/resume")]
pub async fn resume_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    transition(
        &state,
        &staff,
        path.into_inner(),
        "campaign.resume",
        &[status::PAUSED],
        &["paused"],
        "pending",
    )
    .await
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_cancel_campaign",
    params(("id" = i64, Path, description = "campaign id")),
    responses(
        (status = 200, body = CampaignView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`campaign_state`: already completed or cancelled", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/campaigns/{id}/cancel")]
pub async fn cancel_campaign(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    transition(
        &state,
        &staff,
        path.into_inner(),
        "campaign.cancel",
        &[
            status::DRAFT,
            status::SCHEDULED,
            status::RUNNING,
            status::PAUSED,
        ],
        &["pending", "deferred", "paused"],
        "cancelled",
    )
    .await
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_campaigns)
        .service(create_campaign)
        .service(get_campaign)
        .service(preview_campaign)
        .service(test_send_campaign)
        .service(start_campaign)
        .service(pause_campaign)
        .service(resume_campaign)
        .service(cancel_campaign);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_checked_for_their_kind() {
        let a = validate_audience("recall", Audience::default()).unwrap();
        assert_eq!(a.dormant_days, Some(180));
        assert!(validate_audience("birthday", Audience::default()).is_err());
        let b = validate_audience(
            "birthday",
            Audience {
                birthday_from: Some(" 06-01".into()),
                birthday_to: Some("06-30".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(b.birthday_from.as_deref(), Some("06-01"));
        let bad = Audience {
            birthday_from: Some("02-30".into()),
            birthday_to: Some("03-01".into()),
            ..Default::default()
        };
        assert!(validate_audience("custom", bad).is_err());
        let dormant = Audience {
            dormant_days: Some(29),
            ..Default::default()
        };
        assert!(validate_audience("custom", dormant).is_err());
    }
}
