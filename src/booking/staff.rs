//! Staff side of member days: events, slots, bookings, check-in.
//!
//! Every event belongs to one store. Managers, consultants and the front desk reach only their
//! own store's events: another store's event, or a booking of one, answers 404 as if it did not
//! exist, so ids cannot be probed across stores. A role without the action gets 403.
//!
//! Lock order (PostgreSQL): the event's row, then its slots, then bookings and waitlist
//! entries. Every write here that touches more than one of them takes the event's row first
//! (a conditional UPDATE that also refuses a cancelled event), so a slot cannot be added to,
//! or resized on, an event that is being cancelled at the same moment. Members' own paths
//! (book, cancel, waitlist) never take the event's row and start at the slot, so no cycle can
//! form.

use std::collections::HashMap;

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{booking, customer, event_slot, member, member_event, store, waitlist_entry};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{
    cancelled_by, engine, event_not_found, event_status, forget_full, slot_not_found, slot_status,
    status, waitlist_status, EventView, SlotView,
};
use crate::audit;
use crate::auth::staff::{Action, Reach, Staff};
use crate::customers::present;
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::loyalty::calendar::Calendar;
use crate::loyalty::tiers::TierTable;
use crate::outbox;
use crate::state::AppState;

const MAX_TITLE_CHARS: usize = 40;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_SERVICE_CHARS: usize = 60;
const MAX_REASON_CHARS: usize = 200;
const MAX_CAPACITY: i32 = 10_000;
const MAX_LISTED_EVENTS: u64 = 200;

// ---------------------------------------------------------------- views

/// A slot with the length of its waitlist.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct StaffSlotView {
    #[serde(flatten)]
    pub slot: SlotView,
    /// Members waiting for a place.
    pub waiting: i64,
}

/// Bookings of an event by state, and waiting members.
#[derive(Serialize, ToSchema, Clone, Debug, Default)]
pub struct EventCounts {
    pub booked: i64,
    pub checked_in: i64,
    pub no_show: i64,
    pub cancelled: i64,
    pub waiting: i64,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    /// By start time.
    pub slots: Vec<StaffSlotView>,
    pub counts: EventCounts,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// An event in the list: the event and its totals.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct EventSummary {
    #[serde(flatten)]
    pub event: EventView,
    /// How many slots it has.
    pub slots: i64,
    /// Places over all its slots.
    pub capacity: i64,
    /// Places taken over all its slots.
    pub booked: i64,
    /// Members waiting over all its slots.
    pub waiting: i64,
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    /// Latest event date first; at most 200.
    pub items: Vec<EventSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct SlotList {
    /// By start time.
    pub items: Vec<SlotView>,
}

/// A booking as the desk and the store manager see it. The phone is always masked.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct StaffBookingView {
    pub id: i64,
    /// What the member shows at the desk.
    pub code: String,
    /// `booked`, `checked_in`, `no_show` or `cancelled`.
    pub status: String,
    /// `member` (booked it) or `waitlist` (promoted).
    pub via: String,
    pub event_id: i64,
    pub slot_id: i64,
    /// The slot's start.
    pub starts_at: Option<DateTime<Utc>>,
    /// The slot's end.
    pub ends_at: Option<DateTime<Utc>>,
    /// The slot's service.
    pub service: Option<String>,
    pub member_id: i64,
    pub member_no: Option<String>,
    pub customer_id: i64,
    pub customer_name: Option<String>,
    /// 138****1234.
    pub phone_masked: Option<String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `member`, `staff` or `event`.
    pub cancelled_by: Option<String>,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub checked_in_by: Option<i64>,
    pub no_show_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct StaffWaitlistView {
    pub id: i64,
    pub slot_id: i64,
    pub member_id: i64,
    pub member_no: Option<String>,
    pub customer_name: Option<String>,
    /// `waiting`, `promoted`, `left`, `skipped` or `cancelled`.
    pub status: String,
    /// 1 for the first waiting member of the slot; null unless waiting.
    pub position: Option<i64>,
    /// The booking a promotion made.
    pub booking_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct EventBookings {
    /// By slot start, then id.
    pub items: Vec<StaffBookingView>,
    /// Every waitlist entry of the event, by slot start, then id.
    pub waitlist: Vec<StaffWaitlistView>,
}

// ---------------------------------------------------------------- loading

fn reaches(staff: &Staff, reach: Reach, store_id: i64) -> bool {
    reach == Reach::Chain || staff.covers_store(Some(store_id))
}

/// The event, if the caller's reach covers its store; 404 otherwise, as if it did not exist.
async fn event_in_reach(
    conn: &impl ConnectionTrait,
    staff: &Staff,
    reach: Reach,
    id: i64,
) -> Result<member_event::Model, ApiError> {
    member_event::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|e| reaches(staff, reach, e.store_id))
        .ok_or_else(event_not_found)
}

fn booking_not_found() -> ApiError {
    ApiError::not_found("预约")
}

fn event_cancelled() -> ApiError {
    ApiError::conflict("event_cancelled", "该会员日活动已取消")
}

/// Takes the event's row, first in the lock order, and returns it as locked: checks made on
/// it hold to the commit, even if another edit committed since the caller first read it.
/// 409 `event_cancelled` for a cancelled event (the caller has already answered 404 for one
/// that does not exist or is out of reach).
async fn lock_live_event(
    txn: &DatabaseTransaction,
    event_id: i64,
    now: DateTime<Utc>,
) -> Result<member_event::Model, ApiError> {
    member_event::Entity::update_many()
        .col_expr(member_event::Column::UpdatedAt, Expr::value(now))
        .filter(member_event::Column::Id.eq(event_id))
        .filter(member_event::Column::Status.ne(event_status::CANCELLED))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next()
        .ok_or_else(event_cancelled)
}

#[derive(FromQueryResult)]
struct IdCount {
    key: i64,
    n: i64,
}

#[derive(FromQueryResult)]
struct StatusCount {
    key: String,
    n: i64,
}

const COUNT: &str = "CAST(COUNT(*) AS BIGINT)";

/// Waiting members per slot (or per event, with `by_event`) of the given events.
async fn waiting_counts(
    conn: &impl ConnectionTrait,
    event_ids: Vec<i64>,
    by_event: bool,
) -> Result<HashMap<i64, i64>, DbErr> {
    if event_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let key = if by_event {
        waitlist_entry::Column::EventId
    } else {
        waitlist_entry::Column::SlotId
    };
    let rows = waitlist_entry::Entity::find()
        .select_only()
        .column_as(key, "key")
        .column_as(Expr::cust(COUNT), "n")
        .filter(waitlist_entry::Column::EventId.is_in(event_ids))
        .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING))
        .group_by(key)
        .into_model::<IdCount>()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.key, r.n)).collect())
}

async fn slots_of(
    conn: &impl ConnectionTrait,
    event_id: i64,
) -> Result<Vec<event_slot::Model>, DbErr> {
    event_slot::Entity::find()
        .filter(event_slot::Column::EventId.eq(event_id))
        .order_by_asc(event_slot::Column::StartsAt)
        .order_by_asc(event_slot::Column::Id)
        .all(conn)
        .await
}

async fn detail_of(
    conn: &impl ConnectionTrait,
    e: member_event::Model,
    tiers: &TierTable,
) -> Result<EventDetail, ApiError> {
    let slots = slots_of(conn, e.id).await?;
    let waiting = waiting_counts(conn, vec![e.id], false).await?;
    let by_status = booking::Entity::find()
        .select_only()
        .column_as(booking::Column::Status, "key")
        .column_as(Expr::cust(COUNT), "n")
        .filter(booking::Column::EventId.eq(e.id))
        .group_by(booking::Column::Status)
        .into_model::<StatusCount>()
        .all(conn)
        .await?;
    let mut counts = EventCounts {
        waiting: waiting.values().sum(),
        ..Default::default()
    };
    for row in by_status {
        match row.key.as_str() {
            status::BOOKED => counts.booked = row.n,
            status::CHECKED_IN => counts.checked_in = row.n,
            status::NO_SHOW => counts.no_show = row.n,
            status::CANCELLED => counts.cancelled = row.n,
            _ => {}
        }
    }
    Ok(EventDetail {
        event: EventView::of(&e, tiers),
        slots: slots
            .iter()
            .map(|s| StaffSlotView {
                slot: SlotView::from(s),
                waiting: waiting.get(&s.id).copied().unwrap_or(0),
            })
            .collect(),
        counts,
        created_by: e.created_by,
        created_at: e.created_at,
        updated_at: e.updated_at,
        published_at: e.published_at,
        cancelled_at: e.cancelled_at,
    })
}

/// Views of bookings with their slots, members and customers, in four queries.
async fn booking_views(
    conn: &impl ConnectionTrait,
    rows: Vec<booking::Model>,
) -> Result<Vec<StaffBookingView>, DbErr> {
    let slot_ids: Vec<i64> = rows.iter().map(|b| b.slot_id).collect();
    let slots = slots_by_id(conn, slot_ids).await?;
    let people = People::load(
        conn,
        rows.iter().map(|b| b.member_id).collect(),
        rows.iter().map(|b| b.customer_id).collect(),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|b| {
            let slot = slots.get(&b.slot_id);
            let c = people.customers.get(&b.customer_id);
            StaffBookingView {
                id: b.id,
                code: b.code,
                status: b.status,
                via: b.via,
                event_id: b.event_id,
                slot_id: b.slot_id,
                starts_at: slot.map(|s| s.starts_at),
                ends_at: slot.map(|s| s.ends_at),
                service: slot.map(|s| s.service.clone()),
                member_id: b.member_id,
                member_no: people.member_nos.get(&b.member_id).cloned(),
                customer_id: b.customer_id,
                customer_name: c.and_then(|c| c.name.clone()),
                phone_masked: c.and_then(|c| c.phone_masked.clone()),
                created_at: b.created_at,
                cancelled_at: b.cancelled_at,
                cancelled_by: b.cancelled_by,
                checked_in_at: b.checked_in_at,
                checked_in_by: b.checked_in_by,
                no_show_at: b.no_show_at,
            }
        })
        .collect())
}

async fn booking_view(
    conn: &impl ConnectionTrait,
    b: booking::Model,
) -> Result<StaffBookingView, ApiError> {
    booking_views(conn, vec![b])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a booking view went missing")))
}

async fn slots_by_id(
    conn: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<HashMap<i64, event_slot::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(event_slot::Entity::find()
        .filter(event_slot::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// Member numbers and the few customer fields a booking list shows.
struct People {
    member_nos: HashMap<i64, String>,
    customers: HashMap<i64, CustomerBrief>,
}

#[derive(FromQueryResult)]
struct CustomerBrief {
    id: i64,
    name: Option<String>,
    phone_masked: Option<String>,
}

impl People {
    async fn load(
        conn: &impl ConnectionTrait,
        member_ids: Vec<i64>,
        customer_ids: Vec<i64>,
    ) -> Result<Self, DbErr> {
        let member_nos: HashMap<i64, String> = if member_ids.is_empty() {
            HashMap::new()
        } else {
            member::Entity::find()
                .select_only()
                .column(member::Column::Id)
                .column(member::Column::MemberNo)
                .filter(member::Column::Id.is_in(member_ids))
                .into_tuple::<(i64, String)>()
                .all(conn)
                .await?
                .into_iter()
                .collect()
        };
        // Only these columns: the encrypted phone never leaves the database here.
        let customers = if customer_ids.is_empty() {
            HashMap::new()
        } else {
            customer::Entity::find()
                .select_only()
                .column(customer::Column::Id)
                .column(customer::Column::Name)
                .column(customer::Column::PhoneMasked)
                .filter(customer::Column::Id.is_in(customer_ids))
                .into_model::<CustomerBrief>()
                .all(conn)
                .await?
                .into_iter()
                .map(|c| (c.id, c))
                .collect()
        };
        Ok(Self {
            member_nos,
            customers,
        })
    }
}

// ---------------------------------------------------------------- validation

fn check_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::validation("title", "活动名称须为 1-40 个字符"));
    }
    Ok(title.to_string())
}

fn check_description(description: &str) -> Result<String, ApiError> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::validation(
            "description",
            "活动说明不超过 2000 个字符",
        ));
    }
    Ok(description.to_string())
}

fn check_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::validation("reason", "取消原因须为 1-200 个字符"));
    }
    Ok(reason.to_string())
}

fn check_service(service: &str) -> Result<String, ApiError> {
    let service = service.trim();
    if service.is_empty() || service.chars().count() > MAX_SERVICE_CHARS {
        return Err(ApiError::validation("service", "服务项目须为 1-60 个字符"));
    }
    Ok(service.to_string())
}

fn check_capacity(capacity: i32) -> Result<i32, ApiError> {
    if !(1..=MAX_CAPACITY).contains(&capacity) {
        return Err(ApiError::validation("capacity", "名额须在 1 到 10000 之间"));
    }
    Ok(capacity)
}

/// Booking opens before it closes, and cancelling stays possible for a while after it opens.
fn check_times(
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    cancel_deadline: DateTime<Utc>,
) -> Result<(), ApiError> {
    if closes_at <= opens_at {
        return Err(ApiError::validation(
            "closes_at",
            "预约截止时间须晚于开放时间",
        ));
    }
    if cancel_deadline <= opens_at {
        return Err(ApiError::validation(
            "cancel_deadline",
            "取消截止时间须晚于开放时间",
        ));
    }
    Ok(())
}

/// A slot ends after it starts, and starts on the event's business date (a 23:30 slot in
/// Shanghai is on that Shanghai day, whatever UTC says).
fn check_slot_times(
    calendar: &Calendar,
    event_date: NaiveDate,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<(), ApiError> {
    if calendar.date_of(starts_at) != event_date {
        return Err(ApiError::validation(
            "starts_at",
            format!("时段须在活动当天（{event_date}）开始"),
        ));
    }
    if ends_at <= starts_at {
        return Err(ApiError::validation("ends_at", "结束时间须晚于开始时间"));
    }
    Ok(())
}

fn tier_id_of(tiers: &TierTable, code: Option<&str>) -> Result<Option<i64>, ApiError> {
    match code.map(str::trim) {
        None => Ok(None),
        Some(code) => tiers
            .by_code(code)
            .map(|t| Some(t.id))
            .ok_or_else(|| ApiError::validation("min_tier_code", "没有这个会员等级")),
    }
}

// ---------------------------------------------------------------- events

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub store_id: i64,
    /// The member day, a business date (YYYY-MM-DD) in the configured zone.
    pub event_date: NaiveDate,
    /// 1-40 characters.
    pub title: String,
    /// Up to 2000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// The general opening; each tier opens earlier by its lead hours.
    pub opens_at: DateTime<Utc>,
    /// After `opens_at`.
    pub closes_at: DateTime<Utc>,
    /// Members may cancel until then; after `opens_at`.
    pub cancel_deadline: DateTime<Utc>,
    /// The lowest tier that may book, e.g. `gold`.
    #[serde(default)]
    pub min_tier_code: Option<String>,
    /// Consumption at the store on the day earns the member-day bonus; default true.
    #[serde(default)]
    pub points_bonus: Option<bool>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_create_event",
    request_body = EventInput,
    responses(
        (status = 201, description = "A draft, invisible to members until published", body = EventDetail),
        (status = 400, description = "`validation_failed` naming the field", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/events")]
pub async fn create_event(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<EventInput>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let input = body.into_inner();
    let title = check_title(&input.title)?;
    let description = check_description(input.description.as_deref().unwrap_or(""))?;
    check_times(input.opens_at, input.closes_at, input.cancel_deadline)?;
    let tiers = TierTable::load(&state.db).await?;
    let min_tier_id = tier_id_of(&tiers, input.min_tier_code.as_deref())?;
    // Another store is refused like a missing one: the caller cannot plan its member days.
    let store_ok = store::Entity::find_by_id(input.store_id)
        .one(&state.db)
        .await?
        .is_some_and(|s| s.active && reaches(&staff, reach, s.id));
    if !store_ok {
        return Err(ApiError::validation("store_id", "门店不存在"));
    }
    let detail = serde_json::to_value(&input).map_err(ApiError::internal)?;
    let now = state.clock.now();
    let actor = staff.clone();
    let created = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let e = member_event::ActiveModel {
                store_id: Set(input.store_id),
                event_date: Set(input.event_date),
                title: Set(title),
                description: Set(description),
                opens_at: Set(input.opens_at),
                closes_at: Set(input.closes_at),
                cancel_deadline: Set(input.cancel_deadline),
                min_tier_id: Set(min_tier_id),
                points_bonus: Set(input.points_bonus.unwrap_or(true)),
                status: Set(event_status::DRAFT.into()),
                cancel_reason: Set(None),
                created_by: Set(Some(actor.id)),
                created_at: Set(now),
                updated_at: Set(now),
                published_at: Set(None),
                cancelled_at: Set(None),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            audit::entry("event.create")
                .by(&actor)
                .target("member_event", e.id)
                .store(Some(e.store_id))
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(e)
        })
    })
    .await?;
    tracing::info!(event_id = created.id, by = staff.id, "member day created");
    Ok(HttpResponse::Created().json(detail_of(&state.db, created, &tiers).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only this store's events (others see their own store's only).
    pub store_id: Option<i64>,
    /// `draft`, `published` or `cancelled`.
    pub status: Option<String>,
    /// Events on or after this date.
    pub from: Option<NaiveDate>,
    /// Events on or before this date.
    pub to: Option<NaiveDate>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_events",
    params(EventQuery),
    responses(
        (status = 200, body = EventList),
        (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventRead)?;
    let q = query.into_inner();
    let mut select = member_event::Entity::find();
    if reach != Reach::Chain {
        // Staff of no store (cannot happen for these roles) see nothing rather than everything.
        select = select.filter(member_event::Column::StoreId.eq(staff.store_id.unwrap_or(-1)));
    }
    if let Some(id) = q.store_id {
        select = select.filter(member_event::Column::StoreId.eq(id));
    }
    match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => {}
        Some(s @ (event_status::DRAFT | event_status::PUBLISHED | event_status::CANCELLED)) => {
            select = select.filter(member_event::Column::Status.eq(s));
        }
        Some(_) => {
            return Err(ApiError::validation(
                "status",
                "status 须为 draft、published 或 cancelled",
            ))
        }
    }
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if to < from {
            return Err(ApiError::validation("to", "结束日期不能早于开始日期"));
        }
    }
    if let Some(from) = q.from {
        select = select.filter(member_event::Column::EventDate.gte(from));
    }
    if let Some(to) = q.to {
        select = select.filter(member_event::Column::EventDate.lte(to));
    }
    let events = select
        .order_by_desc(member_event::Column::EventDate)
        .order_by_desc(member_event::Column::Id)
        .limit(MAX_LISTED_EVENTS)
        .all(&state.db)
        .await?;
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut totals: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    if !ids.is_empty() {
        // Slots are few per event; reading them beats three aggregate queries.
        for s in event_slot::Entity::find()
            .filter(event_slot::Column::EventId.is_in(ids.clone()))
            .all(&state.db)
            .await?
        {
            let t = totals.entry(s.event_id).or_default();
            t.0 += 1;
            t.1 += i64::from(s.capacity);
            t.2 += i64::from(s.booked);
        }
    }
    let waiting = waiting_counts(&state.db, ids, true).await?;
    let tiers = TierTable::load(&state.db).await?;
    let items = events
        .iter()
        .map(|e| {
            let (slots, capacity, booked) = totals.get(&e.id).copied().unwrap_or_default();
            EventSummary {
                event: EventView::of(e, &tiers),
                slots,
                capacity,
                booked,
                waiting: waiting.get(&e.id).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(EventList { items }))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_get_event",
    params(("id" = i64, Path, description = "event id")),
    responses(
        (status = 200, body = EventDetail),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such event in the caller's store", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/events/{id}")]
pub async fn get_event(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventRead)?;
    let e = event_in_reach(&state.db, &staff, reach, path.into_inner()).await?;
    let tiers = TierTable::load(&state.db).await?;
    Ok(HttpResponse::Ok().json(detail_of(&state.db, e, &tiers).await?))
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_deadline: Option<DateTime<Utc>>,
    /// null removes the minimum tier.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub min_tier_code: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_bonus: Option<bool>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_update_event",
    params(("id" = i64, Path, description = "event id")),
    request_body = EventPatch,
    responses(
        (status = 200, body = EventDetail),
        (status = 400, description = "`validation_failed` naming the field; the merged event is checked as a whole", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`event_cancelled`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/events/{id}")]
pub async fn update_event(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<EventPatch>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let id = path.into_inner();
    let patch = body.into_inner();
    let title = patch.title.as_deref().map(check_title).transpose()?;
    let description = patch
        .description
        .as_deref()
        .map(check_description)
        .transpose()?;
    let tiers = TierTable::load(&state.db).await?;
    let min_tier_id = match &patch.min_tier_code {
        Some(code) => Some(tier_id_of(&tiers, code.as_deref())?),
        None => None,
    };
    let detail = serde_json::to_value(&patch).map_err(ApiError::internal)?;
    let calendar = state.settings.loyalty.calendar();
    let now = state.clock.now();
    let actor = staff.clone();
    let updated = db::write(&state.db, move |txn| {
        Box::pin(async move {
            event_in_reach(txn, &actor, reach, id).await?;
            // Merged with the row as locked, so a concurrent edit is never silently undone.
            let current = lock_live_event(txn, id, now).await?;
            let opens_at = patch.opens_at.unwrap_or(current.opens_at);
            let closes_at = patch.closes_at.unwrap_or(current.closes_at);
            let cancel_deadline = patch.cancel_deadline.unwrap_or(current.cancel_deadline);
            check_times(opens_at, closes_at, cancel_deadline)?;
            if let Some(date) = patch.event_date.filter(|d| *d != current.event_date) {
                let off_day = slots_of(txn, id)
                    .await?
                    .iter()
                    .any(|s| calendar.date_of(s.starts_at) != date);
                if off_day {
                    return Err(ApiError::validation(
                        "event_date",
                        "已有时段不在新的活动日期内，请先调整时段",
                    ));
                }
            }
            let mut update = member_event::Entity::update_many()
                .col_expr(member_event::Column::UpdatedAt, Expr::value(now))
                .col_expr(member_event::Column::OpensAt, Expr::value(opens_at))
                .col_expr(member_event::Column::ClosesAt, Expr::value(closes_at))
                .col_expr(
                    member_event::Column::CancelDeadline,
                    Expr::value(cancel_deadline),
                )
                .filter(member_event::Column::Id.eq(id));
            if let Some(date) = patch.event_date {
                update = update.col_expr(member_event::Column::EventDate, Expr::value(date));
            }
            if let Some(title) = title {
                update = update.col_expr(member_event::Column::Title, Expr::value(title));
            }
            if let Some(description) = description {
                update =
                    update.col_expr(member_event::Column::Description, Expr::value(description));
            }
            if let Some(tier) = min_tier_id {
                update = update.col_expr(member_event::Column::MinTierId, Expr::value(tier));
            }
            if let Some(bonus) = patch.points_bonus {
                update = update.col_expr(member_event::Column::PointsBonus, Expr::value(bonus));
            }
            let updated = update
                .exec_with_returning(txn)
                .await?
                .into_iter()
                .next()
                .ok_or_else(event_not_found)?;
            audit::entry("event.update")
                .by(&actor)
                .target("member_event", id)
                .store(Some(updated.store_id))
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(updated)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(detail_of(&state.db, updated, &tiers).await?))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_publish_event",
    params(("id" = i64, Path, description = "event id")),
    responses(
        (status = 200, description = "Published (publishing a published event changes nothing)", body = EventDetail),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`no_slots` or `event_cancelled`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/events/{id}/publish")]
pub async fn publish_event(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let id = path.into_inner();
    let now = state.clock.now();
    let actor = staff.clone();
    let published = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let e = event_in_reach(txn, &actor, reach, id).await?;
            match e.status.as_str() {
                event_status::CANCELLED => return Err(event_cancelled()),
                event_status::PUBLISHED => return Ok(e),
                _ => {}
            }
            let slots = event_slot::Entity::find()
                .filter(event_slot::Column::EventId.eq(id))
                .filter(event_slot::Column::Status.eq(slot_status::OPEN))
                .count(txn)
                .await?;
            if slots == 0 {
                return Err(ApiError::conflict(
                    "no_slots",
                    "请先添加至少一个预约时段再发布",
                ));
            }
            // Conditional, so two publishes (or a publish racing a cancel) change it once.
            let hit = member_event::Entity::update_many()
                .col_expr(
                    member_event::Column::Status,
                    Expr::value(event_status::PUBLISHED),
                )
                .col_expr(member_event::Column::PublishedAt, Expr::value(now))
                .col_expr(member_event::Column::UpdatedAt, Expr::value(now))
                .filter(member_event::Column::Id.eq(id))
                .filter(member_event::Column::Status.eq(event_status::DRAFT))
                .exec_with_returning(txn)
                .await?;
            let Some(e) = hit.into_iter().next() else {
                let e = member_event::Entity::find_by_id(id)
                    .one(txn)
                    .await?
                    .ok_or_else(event_not_found)?;
                return if e.status == event_status::CANCELLED {
                    Err(event_cancelled())
                } else {
                    Ok(e)
                };
            };
            audit::entry("event.publish")
                .by(&actor)
                .target("member_event", id)
                .store(Some(e.store_id))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(e)
        })
    })
    .await?;
    let tiers = TierTable::load(&state.db).await?;
    Ok(HttpResponse::Ok().json(detail_of(&state.db, published, &tiers).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    /// 1-200 characters.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct CancelledEvent {
    #[serde(flatten)]
    pub event: EventDetail,
    /// Bookings this request cancelled (0 when the event was already cancelled).
    pub bookings_cancelled: u64,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_cancel_event",
    params(("id" = i64, Path, description = "event id")),
    request_body = ReasonInput,
    responses(
        (status = 200, description = "Cancelled with its slots, bookings (each member is told) and waitlist; an event already cancelled is returned unchanged", body = CancelledEvent),
        (status = 400, description = "`validation_failed` naming `reason`", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/events/{id}/cancel")]
pub async fn cancel_event(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<ReasonInput>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let id = path.into_inner();
    let reason = check_reason(&body.reason)?;
    let now = state.clock.now();
    let actor = staff.clone();
    let (event, slot_ids, cancelled) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let e = event_in_reach(txn, &actor, reach, id).await?;
            // (a) The event's row first: of two cancellations one does the work.
            let hit = member_event::Entity::update_many()
                .col_expr(
                    member_event::Column::Status,
                    Expr::value(event_status::CANCELLED),
                )
                .col_expr(
                    member_event::Column::CancelReason,
                    Expr::value(reason.clone()),
                )
                .col_expr(member_event::Column::CancelledAt, Expr::value(now))
                .col_expr(member_event::Column::UpdatedAt, Expr::value(now))
                .filter(member_event::Column::Id.eq(id))
                .filter(member_event::Column::Status.ne(event_status::CANCELLED))
                .exec_with_returning(txn)
                .await?;
            let Some(e) = hit.into_iter().next() else {
                return Ok((e, Vec::new(), 0));
            };
            // (b) The slots, before any booking: the order booking and cancelling use, and
            // from here no member can take a place (booking needs an open slot).
            let slots = event_slot::Entity::update_many()
                .col_expr(
                    event_slot::Column::Status,
                    Expr::value(slot_status::CANCELLED),
                )
                .col_expr(event_slot::Column::Booked, Expr::value(0))
                .col_expr(event_slot::Column::UpdatedAt, Expr::value(now))
                .filter(event_slot::Column::EventId.eq(id))
                .exec_with_returning(txn)
                .await?;
            let starts: HashMap<i64, DateTime<Utc>> =
                slots.iter().map(|s| (s.id, s.starts_at)).collect();
            // (c) Exactly the bookings this statement moved: one checked in meanwhile keeps
            // its state and gets no message.
            let bookings = booking::Entity::update_many()
                .col_expr(booking::Column::Status, Expr::value(status::CANCELLED))
                .col_expr(booking::Column::CancelledAt, Expr::value(now))
                .col_expr(
                    booking::Column::CancelledBy,
                    Expr::value(cancelled_by::EVENT),
                )
                .filter(booking::Column::EventId.eq(id))
                .filter(booking::Column::Status.eq(status::BOOKED))
                .exec_with_returning(txn)
                .await?;
            for b in &bookings {
                outbox::queue(
                    txn,
                    outbox::kind::EVENT_CANCELLED,
                    b.customer_id,
                    format!("booking:{}", b.code),
                    json!({
                        "member_id": b.member_id,
                        "booking_code": b.code,
                        "event_id": e.id,
                        "event_title": e.title,
                        "store_id": e.store_id,
                        "slot_id": b.slot_id,
                        "starts_at": starts.get(&b.slot_id),
                        "reason": reason,
                    }),
                    now,
                )
                .await?;
            }
            // (d) Nobody waits for a place that no longer exists.
            waitlist_entry::Entity::update_many()
                .col_expr(
                    waitlist_entry::Column::Status,
                    Expr::value(waitlist_status::CANCELLED),
                )
                .col_expr(waitlist_entry::Column::UpdatedAt, Expr::value(now))
                .filter(waitlist_entry::Column::EventId.eq(id))
                .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING))
                .exec(txn)
                .await?;
            let n = u64::try_from(bookings.len()).unwrap_or(u64::MAX);
            audit::entry("event.cancel")
                .by(&actor)
                .target("member_event", id)
                .store(Some(e.store_id))
                .detail(json!({"reason": reason, "bookings_cancelled": n}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>((e, slots.iter().map(|s| s.id).collect::<Vec<_>>(), n))
        })
    })
    .await?;
    // A "full" hint would answer `slot_full` instead of "cancelled" for a few seconds.
    forget_full(&state.cache, slot_ids).await;
    if cancelled > 0 {
        tracing::info!(
            event_id = event.id,
            bookings = cancelled,
            by = staff.id,
            "member day cancelled"
        );
    }
    let tiers = TierTable::load(&state.db).await?;
    Ok(HttpResponse::Ok().json(CancelledEvent {
        event: detail_of(&state.db, event, &tiers).await?,
        bookings_cancelled: cancelled,
    }))
}

// ---------------------------------------------------------------- slots

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotInput {
    /// Must fall on the event's business date.
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// 1-60 characters, e.g. 水光针体验.
    pub service: String,
    /// 1-10000 places.
    pub capacity: i32,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_create_slot",
    params(("id" = i64, Path, description = "event id")),
    request_body = SlotInput,
    responses(
        (status = 201, body = SlotView),
        (status = 400, description = "`validation_failed` naming the field", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`event_cancelled`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/events/{id}/slots")]
pub async fn create_slot(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<SlotInput>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let id = path.into_inner();
    let input = body.into_inner();
    let service = check_service(&input.service)?;
    let capacity = check_capacity(input.capacity)?;
    let calendar = state.settings.loyalty.calendar();
    let now = state.clock.now();
    let actor = staff.clone();
    let slot = db::write(&state.db, move |txn| {
        Box::pin(async move {
            event_in_reach(txn, &actor, reach, id).await?;
            // The event's row, so a cancellation cannot miss the new slot, nor a change of
            // date leave it on the old day.
            let e = lock_live_event(txn, id, now).await?;
            check_slot_times(&calendar, e.event_date, input.starts_at, input.ends_at)?;
            let s = event_slot::ActiveModel {
                event_id: Set(id),
                starts_at: Set(input.starts_at),
                ends_at: Set(input.ends_at),
                service: Set(service),
                capacity: Set(capacity),
                booked: Set(0),
                status: Set(slot_status::OPEN.into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            audit::entry("event.slot_create")
                .by(&actor)
                .target("event_slot", s.id)
                .store(Some(e.store_id))
                .detail(json!({"event_id": id, "capacity": capacity}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(s)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(SlotView::from(&slot)))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_slots",
    params(("id" = i64, Path, description = "event id")),
    responses(
        (status = 200, body = SlotList),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/events/{id}/slots")]
pub async fn list_slots(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventRead)?;
    let e = event_in_reach(&state.db, &staff, reach, path.into_inner()).await?;
    let slots = slots_of(&state.db, e.id).await?;
    Ok(HttpResponse::Ok().json(SlotList {
        items: slots.iter().map(SlotView::from).collect(),
    }))
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SlotPatch {
    /// 1-10000, never below the places already taken (409 `capacity_below_booked`). Raising
    /// it gives the new places to waiting members at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_update_slot",
    params(
        ("id" = i64, Path, description = "event id"),
        ("slot_id" = i64, Path, description = "slot id"),
    ),
    request_body = SlotPatch,
    responses(
        (status = 200, body = SlotView),
        (status = 400, description = "`validation_failed` naming the field", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`capacity_below_booked` (with `booked`) or `event_cancelled`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[patch("/api/v1/staff/events/{id}/slots/{slot_id}")]
pub async fn update_slot(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(i64, i64)>,
    body: web::Json<SlotPatch>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let (event_id, slot_id) = path.into_inner();
    let patch = body.into_inner();
    let capacity = patch.capacity.map(check_capacity).transpose()?;
    let service = patch.service.as_deref().map(check_service).transpose()?;
    let detail = serde_json::to_value(&patch).map_err(ApiError::internal)?;
    let calendar = state.settings.loyalty.calendar();
    let now = state.clock.now();
    let actor = staff.clone();
    let (slot, grew) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            event_in_reach(txn, &actor, reach, event_id).await?;
            let e = lock_live_event(txn, event_id, now).await?;
            let current = event_slot::Entity::find_by_id(slot_id)
                .one(txn)
                .await?
                .filter(|s| s.event_id == event_id)
                .ok_or_else(slot_not_found)?;
            let starts_at = patch.starts_at.unwrap_or(current.starts_at);
            let ends_at = patch.ends_at.unwrap_or(current.ends_at);
            if patch.starts_at.is_some() || patch.ends_at.is_some() {
                check_slot_times(&calendar, e.event_date, starts_at, ends_at)?;
            }
            let mut update = event_slot::Entity::update_many()
                .col_expr(event_slot::Column::UpdatedAt, Expr::value(now))
                .col_expr(event_slot::Column::StartsAt, Expr::value(starts_at))
                .col_expr(event_slot::Column::EndsAt, Expr::value(ends_at))
                .filter(event_slot::Column::Id.eq(slot_id));
            if let Some(service) = service {
                update = update.col_expr(event_slot::Column::Service, Expr::value(service));
            }
            if let Some(capacity) = capacity {
                // Decided by the statement against the count as it is now, never a count read
                // earlier: a member booking this second is either counted or refused.
                update = update
                    .col_expr(event_slot::Column::Capacity, Expr::value(capacity))
                    .filter(Expr::col(event_slot::Column::Booked).lte(capacity));
            }
            let Some(updated) = update.exec_with_returning(txn).await?.into_iter().next() else {
                let booked = event_slot::Entity::find_by_id(slot_id)
                    .one(txn)
                    .await?
                    .map_or(current.booked, |s| s.booked);
                return Err(
                    ApiError::conflict("capacity_below_booked", "名额不能少于已预约人数")
                        .with_detail("booked", booked),
                );
            };
            // The slot's row is held since the UPDATE, as promotion requires.
            let grew = updated.capacity > current.capacity;
            let promoted = if grew {
                engine::promote(txn, slot_id, now).await?
            } else {
                Vec::new()
            };
            let slot = if promoted.is_empty() {
                updated
            } else {
                event_slot::Entity::find_by_id(slot_id)
                    .one(txn)
                    .await?
                    .ok_or_else(slot_not_found)?
            };
            let mut detail = detail;
            if let Some(d) = detail.as_object_mut() {
                d.insert("event_id".into(), json!(event_id));
                d.insert(
                    "promoted_booking_ids".into(),
                    json!(promoted.iter().map(|b| b.id).collect::<Vec<_>>()),
                );
            }
            audit::entry("event.slot_update")
                .by(&actor)
                .target("event_slot", slot_id)
                .store(Some(e.store_id))
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>((slot, grew))
        })
    })
    .await?;
    if grew {
        forget_full(&state.cache, [slot_id]).await;
    }
    Ok(HttpResponse::Ok().json(SlotView::from(&slot)))
}

// ---------------------------------------------------------------- bookings

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BookingQuery {
    /// `booked`, `checked_in`, `no_show` or `cancelled`.
    pub status: Option<String>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_event_bookings",
    params(("id" = i64, Path, description = "event id"), BookingQuery),
    responses(
        (status = 200, description = "Bookings and the waitlist; phones masked", body = EventBookings),
        (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/events/{id}/bookings")]
pub async fn list_event_bookings(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    query: web::Query<BookingQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventRead)?;
    let e = event_in_reach(&state.db, &staff, reach, path.into_inner()).await?;
    let mut select = booking::Entity::find().filter(booking::Column::EventId.eq(e.id));
    match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => {}
        Some(s @ (status::BOOKED | status::CHECKED_IN | status::NO_SHOW | status::CANCELLED)) => {
            select = select.filter(booking::Column::Status.eq(s));
        }
        Some(_) => {
            return Err(ApiError::validation(
                "status",
                "status 须为 booked、checked_in、no_show 或 cancelled",
            ))
        }
    }
    let slots = slots_of(&state.db, e.id).await?;
    // Slot order by start, then id; bookings and entries sort by it.
    let slot_rank: HashMap<i64, usize> = slots.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let rank = |slot_id: i64| slot_rank.get(&slot_id).copied().unwrap_or(usize::MAX);
    let mut bookings = select
        .order_by_asc(booking::Column::Id)
        .all(&state.db)
        .await?;
    bookings.sort_by_key(|b| (rank(b.slot_id), b.id));
    let items = booking_views(&state.db, bookings).await?;

    let mut entries = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::EventId.eq(e.id))
        .order_by_asc(waitlist_entry::Column::Id)
        .all(&state.db)
        .await?;
    entries.sort_by_key(|w| (rank(w.slot_id), w.id));
    let people = People::load(
        &state.db,
        entries.iter().map(|w| w.member_id).collect(),
        entries.iter().map(|w| w.customer_id).collect(),
    )
    .await?;
    // Positions counted here rather than per entry: the same answer as `engine::position`
    // (waiting entries of the slot up to this one, in id order) without a query each.
    let mut ahead: HashMap<i64, i64> = HashMap::new();
    let waitlist = entries
        .into_iter()
        .map(|w| {
            let position = (w.status == waitlist_status::WAITING).then(|| {
                let n = ahead.entry(w.slot_id).or_insert(0);
                *n += 1;
                *n
            });
            StaffWaitlistView {
                id: w.id,
                slot_id: w.slot_id,
                member_id: w.member_id,
                member_no: people.member_nos.get(&w.member_id).cloned(),
                customer_name: people
                    .customers
                    .get(&w.customer_id)
                    .and_then(|c| c.name.clone()),
                status: w.status,
                position,
                booking_id: w.booking_id,
                created_at: w.created_at,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(EventBookings { items, waitlist }))
}

/// The booking named by a path segment: all digits is an id, anything else a code (codes
/// start with a letter), compared in upper case because the desk types what it reads.
async fn find_booking(
    conn: &impl ConnectionTrait,
    id_or_code: &str,
) -> Result<booking::Model, ApiError> {
    let key = id_or_code.trim();
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
        let id: i64 = key.parse().map_err(|_| booking_not_found())?;
        return booking::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or_else(booking_not_found);
    }
    let code = key.to_ascii_uppercase();
    if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(booking_not_found());
    }
    booking::Entity::find()
        .filter(booking::Column::Code.eq(code))
        .one(conn)
        .await?
        .ok_or_else(booking_not_found)
}

/// The booking and its event, if the caller's reach covers the event's store.
async fn booking_in_reach(
    conn: &impl ConnectionTrait,
    staff: &Staff,
    reach: Reach,
    b: booking::Model,
) -> Result<(booking::Model, member_event::Model), ApiError> {
    let e = member_event::Entity::find_by_id(b.event_id)
        .one(conn)
        .await?
        .filter(|e| reaches(staff, reach, e.store_id))
        .ok_or_else(booking_not_found)?;
    Ok((b, e))
}

/// Why a booking that is not `booked` cannot be checked in.
fn check_in_refusal(b: &booking::Model) -> ApiError {
    match b.status.as_str() {
        status::CHECKED_IN => ApiError::conflict("already_checked_in", "该预约已签到")
            .with_detail("checked_in_at", b.checked_in_at.map(|t| t.to_rfc3339())),
        status::CANCELLED => ApiError::conflict("booking_cancelled", "该预约已取消"),
        status::NO_SHOW => ApiError::conflict("marked_no_show", "该预约已记为爽约"),
        other => ApiError::internal(anyhow::anyhow!("booking {} in unknown state {other}", b.id)),
    }
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_check_in_booking",
    params(("id_or_code" = String, Path, description = "a booking id (all digits) or its code, any case")),
    responses(
        (status = 200, description = "Checked in", body = StaffBookingView),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such booking in the caller's store", body = ErrorEnvelope),
        (status = 409, description = "`already_checked_in`, `booking_cancelled`, `marked_no_show`, or `not_event_day` (with `event_date`)", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/bookings/{id_or_code}/check-in")]
pub async fn check_in(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::BookingCheckIn)?;
    let key = path.into_inner();
    let now = state.clock.now();
    let today = state.settings.loyalty.calendar().date_of(now);
    let actor = staff.clone();
    let checked_in = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let b = find_booking(txn, &key).await?;
            let (b, e) = booking_in_reach(txn, &actor, reach, b).await?;
            if b.status != status::BOOKED {
                return Err(check_in_refusal(&b));
            }
            if today != e.event_date {
                return Err(ApiError::conflict("not_event_day", "只能在活动当天签到")
                    .with_detail("event_date", e.event_date.to_string()));
            }
            // The state decides in the statement: of two desks scanning at once one wins.
            let hit = booking::Entity::update_many()
                .col_expr(booking::Column::Status, Expr::value(status::CHECKED_IN))
                .col_expr(booking::Column::CheckedInAt, Expr::value(now))
                .col_expr(booking::Column::CheckedInBy, Expr::value(actor.id))
                .filter(booking::Column::Id.eq(b.id))
                .filter(booking::Column::Status.eq(status::BOOKED))
                .exec_with_returning(txn)
                .await?;
            let Some(done) = hit.into_iter().next() else {
                let current = booking::Entity::find_by_id(b.id)
                    .one(txn)
                    .await?
                    .ok_or_else(booking_not_found)?;
                return Err(check_in_refusal(&current));
            };
            audit::entry("booking.check_in")
                .by(&actor)
                .target("booking", done.id)
                .store(Some(e.store_id))
                .detail(json!({"event_id": e.id, "slot_id": done.slot_id}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(done)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(booking_view(&state.db, checked_in).await?))
}

#[derive(Serialize, ToSchema)]
pub struct StaffCancelledBooking {
    pub booking: StaffBookingView,
    /// False when it was already cancelled: nothing changed.
    pub changed: bool,
    /// Bookings the freed place made for waiting members.
    pub promoted_booking_ids: Vec<i64>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_cancel_booking",
    params(("id" = i64, Path, description = "booking id")),
    request_body = ReasonInput,
    responses(
        (status = 200, description = "Cancelled (no deadline for staff); the place goes to the first waiting member", body = StaffCancelledBooking),
        (status = 400, description = "`validation_failed` naming `reason`", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`not_cancellable`: checked in or a no-show", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/bookings/{id}/cancel")]
pub async fn cancel_booking(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<ReasonInput>,
) -> Result<HttpResponse, ApiError> {
    let reach = staff.require(Action::EventManage)?;
    let id = path.into_inner();
    let reason = check_reason(&body.reason)?;
    let now = state.clock.now();
    let actor = staff.clone();
    let (cancelled, changed, promoted) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let b = booking::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or_else(booking_not_found)?;
            let (_, e) = booking_in_reach(txn, &actor, reach, b).await?;
            let done = engine::cancel(txn, id, cancelled_by::STAFF, now).await?;
            let promoted: Vec<i64> = done.promoted.iter().map(|p| p.id).collect();
            if done.changed {
                // The member did not ask for this: they hear of it, with the reason.
                let b = &done.booking;
                outbox::queue(
                    txn,
                    outbox::kind::BOOKING_CANCELLED,
                    b.customer_id,
                    format!("booking:{}", b.code),
                    json!({
                        "member_id": b.member_id,
                        "booking_code": b.code,
                        "event_id": e.id,
                        "event_title": e.title,
                        "store_id": e.store_id,
                        "slot_id": b.slot_id,
                        "reason": reason,
                    }),
                    now,
                )
                .await?;
                audit::entry("booking.cancel")
                    .by(&actor)
                    .target("booking", id)
                    .store(Some(e.store_id))
                    .detail(json!({
                        "event_id": e.id,
                        "slot_id": done.booking.slot_id,
                        "reason": reason,
                        "promoted_booking_ids": promoted,
                    }))
                    .write(txn)
                    .await?;
            }
            Ok::<_, ApiError>((done.booking, done.changed, promoted))
        })
    })
    .await?;
    if changed {
        forget_full(&state.cache, [cancelled.slot_id]).await;
    }
    Ok(HttpResponse::Ok().json(StaffCancelledBooking {
        booking: booking_view(&state.db, cancelled).await?,
        changed,
        promoted_booking_ids: promoted,
    }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_event)
        .service(list_events)
        .service(get_event)
        .service(update_event)
        .service(publish_event)
        .service(cancel_event)
        .service(create_slot)
        .service(list_slots)
        .service(update_slot)
        .service(list_event_bookings)
        .service(check_in)
        .service(cancel_booking);
}
