//! The member side of member days: the events I can see with my own opening time, booking,
//! cancelling, the waitlist and my bookings.

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{booking, event_slot, member, member_event, store, waitlist_entry};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::engine;
use super::{
    cancelled_by, event_not_found, event_status, forget_full, known_full, opens_for, remember_full,
    status, waitlist_status, EventView, SlotView,
};
use crate::auth::member::Member;
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::idempotency::{self, IdempotencyKey, Outcome};
use crate::loyalty::membership;
use crate::loyalty::tiers::TierTable;
use crate::paging;
use crate::state::AppState;

// ---------------------------------------------------------------- views

/// My place in an event, as the event lists show it.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct MyBookingRef {
    pub id: i64,
    pub code: String,
    pub slot_id: i64,
    pub status: String,
}

/// An event as one member sees it.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct MemberEventView {
    #[serde(flatten)]
    pub event: EventView,
    pub store_name: String,
    /// When booking opens for me: the general opening minus my tier's lead hours.
    pub my_opens_at: DateTime<Utc>,
    /// My tier meets the event's minimum.
    pub eligible: bool,
    /// I can book now (open for me and not yet closed).
    pub open_now: bool,
    /// Places still free across the slots.
    pub left: i32,
    pub my_booking: Option<MyBookingRef>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct MyWaitlistRef {
    pub id: i64,
    /// 1 for the next member to get a freed place.
    pub position: u64,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct MemberSlotView {
    #[serde(flatten)]
    pub slot: SlotView,
    pub full: bool,
    pub my_waitlist: Option<MyWaitlistRef>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberEventList {
    pub items: Vec<MemberEventView>,
    /// The server's clock: countdowns run against it, not the phone's.
    pub server_time: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberEventDetail {
    #[serde(flatten)]
    pub event: MemberEventView,
    pub slots: Vec<MemberSlotView>,
    pub server_time: DateTime<Utc>,
}

/// A booking of mine with what I need to find my way there.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct MemberBookingView {
    pub id: i64,
    /// Show it (or its QR) at the desk.
    pub code: String,
    /// `booked`, `checked_in`, `no_show` or `cancelled`.
    pub status: String,
    /// `member` (I booked it) or `waitlist` (promoted from the waitlist).
    pub via: String,
    pub event_id: i64,
    pub event_title: String,
    pub event_date: NaiveDate,
    pub store_id: i64,
    pub store_name: String,
    pub slot_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service: String,
    pub cancel_deadline: DateTime<Utc>,
    /// I can still cancel it myself.
    pub cancellable: bool,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BookingEnvelope {
    pub booking: MemberBookingView,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CancelledBooking {
    pub booking: MemberBookingView,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct WaitlistView {
    pub id: i64,
    pub event_id: i64,
    pub event_title: String,
    pub event_date: NaiveDate,
    pub slot_id: i64,
    pub starts_at: DateTime<Utc>,
    pub service: String,
    /// `waiting`, `promoted`, `left`, `skipped` or `cancelled`.
    pub status: String,
    /// While waiting: 1 for the next member to get a freed place.
    pub position: Option<u64>,
    /// The booking made for me when I was promoted.
    pub booking_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct WaitlistEnvelope {
    pub entry: WaitlistView,
}

/// Events, slots and stores by id, loaded once for a list.
struct Lookup {
    events: HashMap<i64, member_event::Model>,
    slots: HashMap<i64, event_slot::Model>,
    stores: HashMap<i64, String>,
}

impl Lookup {
    async fn load(
        conn: &impl ConnectionTrait,
        event_ids: impl IntoIterator<Item = i64>,
        slot_ids: impl IntoIterator<Item = i64>,
    ) -> Result<Self, DbErr> {
        let event_ids: HashSet<i64> = event_ids.into_iter().collect();
        let slot_ids: HashSet<i64> = slot_ids.into_iter().collect();
        let events: HashMap<i64, member_event::Model> = member_event::Entity::find()
            .filter(member_event::Column::Id.is_in(event_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let slots = event_slot::Entity::find()
            .filter(event_slot::Column::Id.is_in(slot_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let store_ids: HashSet<i64> = events.values().map(|e| e.store_id).collect();
        let stores = store::Entity::find()
            .filter(store::Column::Id.is_in(store_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        Ok(Self {
            events,
            slots,
            stores,
        })
    }

    fn booking(&self, b: &booking::Model, now: DateTime<Utc>) -> Option<MemberBookingView> {
        let e = self.events.get(&b.event_id)?;
        let s = self.slots.get(&b.slot_id)?;
        Some(MemberBookingView {
            id: b.id,
            code: b.code.clone(),
            status: b.status.clone(),
            via: b.via.clone(),
            event_id: e.id,
            event_title: e.title.clone(),
            event_date: e.event_date,
            store_id: e.store_id,
            store_name: self.stores.get(&e.store_id).cloned().unwrap_or_default(),
            slot_id: s.id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            service: s.service.clone(),
            cancel_deadline: e.cancel_deadline,
            cancellable: b.status == status::BOOKED && now < e.cancel_deadline,
            created_at: b.created_at,
            cancelled_at: b.cancelled_at,
            checked_in_at: b.checked_in_at,
        })
    }

    fn waitlist(&self, w: &waitlist_entry::Model, position: Option<u64>) -> Option<WaitlistView> {
        let e = self.events.get(&w.event_id)?;
        let s = self.slots.get(&w.slot_id)?;
        Some(WaitlistView {
            id: w.id,
            event_id: e.id,
            event_title: e.title.clone(),
            event_date: e.event_date,
            slot_id: s.id,
            starts_at: s.starts_at,
            service: s.service.clone(),
            status: w.status.clone(),
            position,
            booking_id: w.booking_id,
            created_at: w.created_at,
        })
    }
}

async fn booking_view(
    conn: &impl ConnectionTrait,
    b: &booking::Model,
    now: DateTime<Utc>,
) -> Result<MemberBookingView, ApiError> {
    Lookup::load(conn, [b.event_id], [b.slot_id])
        .await?
        .booking(b, now)
        .ok_or_else(event_not_found)
}

async fn waitlist_view(
    conn: &impl ConnectionTrait,
    w: &waitlist_entry::Model,
) -> Result<WaitlistView, ApiError> {
    let position = engine::position(conn, w).await?;
    Lookup::load(conn, [w.event_id], [w.slot_id])
        .await?
        .waitlist(w, position)
        .ok_or_else(event_not_found)
}

// ---------------------------------------------------------------- events

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only this store's member days.
    pub store_id: Option<i64>,
}

/// What the member sees of `events`: their opening time, eligibility, places left and their
/// own booking, from a handful of queries however many events there are.
async fn member_views(
    state: &AppState,
    m: &member::Model,
    events: Vec<member_event::Model>,
    now: DateTime<Utc>,
) -> Result<Vec<(MemberEventView, Vec<event_slot::Model>)>, ApiError> {
    let tiers = TierTable::load(&state.db).await?;
    let today = state.settings.loyalty.calendar().date_of(now);
    let (tier, _, _) = tiers.effective(m, today);
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut slots: HashMap<i64, Vec<event_slot::Model>> = HashMap::new();
    for s in event_slot::Entity::find()
        .filter(event_slot::Column::EventId.is_in(ids.clone()))
        .order_by_asc(event_slot::Column::StartsAt)
        .order_by_asc(event_slot::Column::Id)
        .all(&state.db)
        .await?
    {
        slots.entry(s.event_id).or_default().push(s);
    }
    let mine: HashMap<i64, booking::Model> = booking::Entity::find()
        .filter(booking::Column::MemberId.eq(m.id))
        .filter(booking::Column::EventId.is_in(ids))
        .filter(booking::Column::Status.ne(status::CANCELLED))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|b| (b.event_id, b))
        .collect();
    let store_ids: HashSet<i64> = events.iter().map(|e| e.store_id).collect();
    let stores: HashMap<i64, String> = store::Entity::find()
        .filter(store::Column::Id.is_in(store_ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok(events
        .into_iter()
        .map(|e| {
            let my_opens_at = opens_for(&e, tier.booking_lead_hours);
            let eligible = e
                .min_tier_id
                .and_then(|id| tiers.by_id(id))
                .is_none_or(|min| tier.rank >= min.rank);
            let event_slots = slots.remove(&e.id).unwrap_or_default();
            let left = event_slots
                .iter()
                .filter(|s| s.status == super::slot_status::OPEN)
                .map(|s| (s.capacity - s.booked).max(0))
                .sum();
            let view = MemberEventView {
                store_name: stores.get(&e.store_id).cloned().unwrap_or_default(),
                my_opens_at,
                eligible,
                open_now: e.status == event_status::PUBLISHED
                    && eligible
                    && now >= my_opens_at
                    && now < e.closes_at,
                left,
                my_booking: mine.get(&e.id).map(|b| MyBookingRef {
                    id: b.id,
                    code: b.code.clone(),
                    slot_id: b.slot_id,
                    status: b.status.clone(),
                }),
                event: EventView::of(&e, &tiers),
            };
            (view, event_slots)
        })
        .collect())
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_list_events",
    params(EventQuery),
    responses(
        (status = 200, description = "Published member days from today on, soonest first, each with my own opening time", body = MemberEventList),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/events")]
pub async fn member_events(
    state: web::Data<AppState>,
    who: Member,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let now = state.clock.now();
    let today = state.settings.loyalty.calendar().date_of(now);
    let mut q = member_event::Entity::find()
        .filter(member_event::Column::Status.eq(event_status::PUBLISHED))
        .filter(member_event::Column::EventDate.gte(today));
    if let Some(store_id) = query.store_id {
        q = q.filter(member_event::Column::StoreId.eq(store_id));
    }
    let events = q
        .order_by_asc(member_event::Column::EventDate)
        .order_by_asc(member_event::Column::Id)
        .all(&state.db)
        .await?;
    let items = member_views(&state, &m, events, now)
        .await?
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    Ok(HttpResponse::Ok().json(MemberEventList {
        items,
        server_time: now,
    }))
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_get_event",
    params(("id" = i64, Path, description = "Event id")),
    responses(
        (status = 200, description = "The member day with its slots, what is left of each and my waitlist places", body = MemberEventDetail),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`, or no such (published) event", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/events/{id}")]
pub async fn member_event_detail(
    state: web::Data<AppState>,
    who: Member,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let now = state.clock.now();
    let e = member_event::Entity::find_by_id(path.into_inner())
        .one(&state.db)
        .await?
        .filter(|e| e.status != event_status::DRAFT)
        .ok_or_else(event_not_found)?;
    let waiting: Vec<waitlist_entry::Model> = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::EventId.eq(e.id))
        .filter(waitlist_entry::Column::MemberId.eq(m.id))
        .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING))
        .all(&state.db)
        .await?;
    let mut my_waitlist = HashMap::new();
    for w in &waiting {
        if let Some(position) = engine::position(&state.db, w).await? {
            my_waitlist.insert(w.slot_id, MyWaitlistRef { id: w.id, position });
        }
    }
    let Some((event, slots)) = member_views(&state, &m, vec![e], now).await?.pop() else {
        return Err(event_not_found());
    };
    let slots = slots
        .iter()
        .map(|s| MemberSlotView {
            slot: SlotView::from(s),
            full: s.booked >= s.capacity,
            my_waitlist: my_waitlist.remove(&s.id),
        })
        .collect();
    Ok(HttpResponse::Ok().json(MemberEventDetail {
        event,
        slots,
        server_time: now,
    }))
}

// ---------------------------------------------------------------- booking

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    pub slot_id: i64,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_book_slot",
    params(
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key and body replays the first answer and books nothing more"),
    ),
    request_body = BookRequest,
    responses(
        (status = 201, description = "Booked: my booking with its code for the desk", body = BookingEnvelope),
        (status = 400, description = "`validation_failed`: missing or malformed Idempotency-Key", body = ErrorEnvelope),
        (status = 404, description = "`not_member`, or no such slot or event", body = ErrorEnvelope),
        (status = 409, description = "`slot_full`, `not_open_yet` (with `opens_at`, my own opening time), `already_booked` (with `booking_id`), `tier_too_low` (with `min_tier`) or `booking_closed`", body = ErrorEnvelope),
        (status = 422, description = "`idempotency_key_reused` with another body", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/bookings")]
pub async fn member_book(
    state: web::Data<AppState>,
    who: Member,
    req: HttpRequest,
    body: web::Json<BookRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::required(&req)?;
    let m = membership::current(&state, &who).await?;
    let body = body.into_inner();
    let scope = format!("member:{}:book", m.id);
    let now = state.clock.now();
    let today = state.settings.loyalty.calendar().date_of(now);
    let slot_id = body.slot_id;
    let checked: Result<(engine::Target, String), ApiError> = async {
        // Sold out a moment ago: answer without touching the slot. Only a hint; a place freed
        // since then clears it, and the statement in the transaction is what decides.
        if known_full(&state.cache, slot_id).await {
            return Err(engine::slot_full());
        }
        let (target, tiers) = tokio::try_join!(engine::load_target(&state.db, slot_id), async {
            TierTable::load(&state.db).await.map_err(ApiError::from)
        })?;
        engine::gate(&target, &tiers, &m, now, today)?;
        let (live, store) = tokio::try_join!(
            engine::live_booking(&state.db, target.event.id, m.id),
            store::Entity::find_by_id(target.event.store_id).one(&state.db)
        )?;
        if let Some(b) = live {
            return Err(engine::already_booked(Some(b.id)));
        }
        Ok((target, store.map(|s| s.name).unwrap_or_default()))
    }
    .await;
    let (target, store_name) = match checked {
        Ok(checked) => checked,
        // A retry of a request that went through answers as it did, not as a check made
        // since (sold out, already booked, closed) would.
        Err(e) => {
            return match idempotency::replay(&state.db, &scope, &key, &body).await? {
                Some(replay) => Ok(replay),
                None => Err(e),
            }
        }
    };
    let (event_id, member_id) = (target.event.id, m.id);
    let result = idempotency::once(
        &state.db,
        scope,
        key,
        &body,
        Box::new(move |txn| {
            Box::pin(async move {
                let b = engine::book(txn, &target, &m, now).await?;
                let lookup = Lookup {
                    stores: HashMap::from([(target.event.store_id, store_name)]),
                    events: HashMap::from([(target.event.id, target.event)]),
                    slots: HashMap::from([(target.slot.id, target.slot)]),
                };
                let view = lookup.booking(&b, now).ok_or_else(event_not_found)?;
                let envelope = BookingEnvelope { booking: view };
                Ok((Outcome::new(StatusCode::CREATED, &envelope)?, ()))
            })
        }),
    )
    .await;
    match result {
        Ok((response, _)) => Ok(response),
        Err(e) if e.code() == "slot_full" => {
            remember_full(&state.cache, slot_id).await;
            Err(e)
        }
        // The unique index refused a second booking: the one that won has committed by now
        // (the index made this insert wait for it), so the answer can name it.
        Err(e) if e.code() == "already_booked" => {
            let won = engine::live_booking(&state.db, event_id, member_id).await?;
            Err(engine::already_booked(won.map(|b| b.id)))
        }
        Err(e) => Err(e),
    }
}

/// My booking `id`; another member's is 404, as if it did not exist.
async fn my_booking(
    conn: &impl ConnectionTrait,
    id: i64,
    member_id: i64,
) -> Result<booking::Model, ApiError> {
    booking::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|b| b.member_id == member_id)
        .ok_or_else(|| ApiError::not_found("预约"))
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_cancel_booking",
    params(("id" = i64, Path, description = "Booking id")),
    responses(
        (status = 200, description = "Cancelled (also when it already was); the place goes to the first waiting member", body = CancelledBooking),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`, or no such booking of mine", body = ErrorEnvelope),
        (status = 409, description = "`cancel_deadline_passed` (with `cancel_deadline`) or `not_cancellable` (checked in or a no-show)", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/bookings/{id}/cancel")]
pub async fn member_cancel_booking(
    state: web::Data<AppState>,
    who: Member,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let now = state.clock.now();
    let b = my_booking(&state.db, path.into_inner(), m.id).await?;
    if b.status == status::BOOKED {
        let e = member_event::Entity::find_by_id(b.event_id)
            .one(&state.db)
            .await?
            .ok_or_else(event_not_found)?;
        if now >= e.cancel_deadline {
            return Err(ApiError::conflict(
                "cancel_deadline_passed",
                "已过取消截止时间，如需调整请联系门店",
            )
            .with_detail("cancel_deadline", serde_json::json!(e.cancel_deadline)));
        }
    }
    let id = b.id;
    let cancelled = db::write(&state.db, |txn| {
        Box::pin(async move { engine::cancel(txn, id, cancelled_by::MEMBER, now).await })
    })
    .await?;
    if cancelled.changed {
        forget_full(&state.cache, [cancelled.booking.slot_id]).await;
    }
    Ok(HttpResponse::Ok().json(CancelledBooking {
        booking: booking_view(&state.db, &cancelled.booking, now).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BookingQuery {
    pub cursor: Option<i64>,
    /// 1-100, default 20.
    pub limit: Option<u64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberBookingPage {
    pub items: Vec<MemberBookingView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_list_bookings",
    params(BookingQuery),
    responses(
        (status = 200, description = "My bookings, newest first", body = MemberBookingPage),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/bookings")]
pub async fn member_bookings(
    state: web::Data<AppState>,
    who: Member,
    query: web::Query<BookingQuery>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let limit = paging::limit(query.limit, 20, 100)?;
    let now = state.clock.now();
    let (rows, next_cursor) = paging::fetch(
        &state.db,
        booking::Entity::find().filter(booking::Column::MemberId.eq(m.id)),
        booking::Column::Id,
        query.cursor,
        limit,
        |b| b.id,
    )
    .await?;
    let lookup = Lookup::load(
        &state.db,
        rows.iter().map(|b| b.event_id),
        rows.iter().map(|b| b.slot_id),
    )
    .await?;
    Ok(HttpResponse::Ok().json(MemberBookingPage {
        items: rows.iter().filter_map(|b| lookup.booking(b, now)).collect(),
        next_cursor,
    }))
}

// ---------------------------------------------------------------- waitlist

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitlistRequest {
    pub slot_id: i64,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_join_waitlist",
    request_body = WaitlistRequest,
    responses(
        (status = 201, description = "On the waitlist, with my position", body = WaitlistEnvelope),
        (status = 200, description = "Already waiting for this slot: my entry", body = WaitlistEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`, or no such slot or event", body = ErrorEnvelope),
        (status = 409, description = "`slot_available` (book it instead), `already_booked`, `not_open_yet`, `tier_too_low` or `booking_closed`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/waitlist")]
pub async fn member_join_waitlist(
    state: web::Data<AppState>,
    who: Member,
    body: web::Json<WaitlistRequest>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let now = state.clock.now();
    let today = state.settings.loyalty.calendar().date_of(now);
    let target = engine::load_target(&state.db, body.slot_id).await?;
    let tiers = TierTable::load(&state.db).await?;
    engine::gate(&target, &tiers, &m, now, today)?;
    let (entry, created) = db::write(&state.db, |txn| {
        Box::pin(async move { engine::join_waitlist(txn, &target, &m, now).await })
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(WaitlistEnvelope {
        entry: waitlist_view(&state.db, &entry).await?,
    }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct WaitlistList {
    pub items: Vec<WaitlistView>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_list_waitlist",
    responses(
        (status = 200, description = "My waitlist entries, newest first (the last 50)", body = WaitlistList),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/waitlist")]
pub async fn member_waitlist(
    state: web::Data<AppState>,
    who: Member,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let (rows, _) = paging::fetch(
        &state.db,
        waitlist_entry::Entity::find().filter(waitlist_entry::Column::MemberId.eq(m.id)),
        waitlist_entry::Column::Id,
        None,
        50,
        |w| w.id,
    )
    .await?;
    let lookup = Lookup::load(
        &state.db,
        rows.iter().map(|w| w.event_id),
        rows.iter().map(|w| w.slot_id),
    )
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for w in &rows {
        let position = engine::position(&state.db, w).await?;
        if let Some(v) = lookup.waitlist(w, position) {
            items.push(v);
        }
    }
    Ok(HttpResponse::Ok().json(WaitlistList { items }))
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_leave_waitlist",
    params(("id" = i64, Path, description = "Waitlist entry id")),
    responses(
        (status = 200, description = "Off the waitlist (also when I already was)", body = WaitlistEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`, or no such entry of mine", body = ErrorEnvelope),
        (status = 409, description = "`already_promoted` (with `booking_id`): cancel that booking instead", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/waitlist/{id}/cancel")]
pub async fn member_leave_waitlist(
    state: web::Data<AppState>,
    who: Member,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let now = state.clock.now();
    let (entry_id, member_id) = (path.into_inner(), m.id);
    let entry = db::write(&state.db, |txn| {
        Box::pin(async move { engine::leave_waitlist(txn, entry_id, member_id, now).await })
    })
    .await?;
    Ok(HttpResponse::Ok().json(WaitlistEnvelope {
        entry: waitlist_view(&state.db, &entry).await?,
    }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(member_events)
        .service(member_event_detail)
        .service(member_book)
        .service(member_cancel_booking)
        .service(member_bookings)
        .service(member_join_waitlist)
        .service(member_waitlist)
        .service(member_leave_waitlist);
}
