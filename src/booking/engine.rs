//! The write transactions of booking: book, cancel, promote from the waitlist, join and leave
//! the waitlist. Each runs in the caller's write transaction (`db::begin_write`, BEGIN
//! IMMEDIATE on SQLite) and takes the slot's row first, so that on PostgreSQL every path
//! locks in the same order (slot, then booking) and none can deadlock another.

use chrono::{DateTime, NaiveDate, Utc};
use entity::{booking, event_slot, member, member_event, waitlist_entry};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::{
    event_not_found, event_status, new_code, opens_for, slot_not_found, slot_status, status, via,
    waitlist_status,
};
use crate::db;
use crate::error::ApiError;
use crate::loyalty::tiers::TierTable;
use crate::outbox;

/// A slot and its event, read before the write transaction to check the gate.
#[derive(Clone, Debug)]
pub struct Target {
    pub event: member_event::Model,
    pub slot: event_slot::Model,
}

/// The slot and its event as a member may see them: a draft event is 404 like a missing one.
pub async fn load_target(conn: &impl ConnectionTrait, slot_id: i64) -> Result<Target, ApiError> {
    // One query: this runs on every booking attempt of a flash sale.
    let (slot, event) = event_slot::Entity::find_by_id(slot_id)
        .find_also_related(member_event::Entity)
        .one(conn)
        .await?
        .ok_or_else(slot_not_found)?;
    let event = event
        .filter(|e| e.status != event_status::DRAFT)
        .ok_or_else(event_not_found)?;
    Ok(Target { event, slot })
}

pub fn booking_closed(message: &'static str) -> ApiError {
    ApiError::conflict("booking_closed", message)
}

pub fn slot_full() -> ApiError {
    ApiError::conflict("slot_full", "该时段已约满，可加入候补")
}

pub fn already_booked(booking_id: Option<i64>) -> ApiError {
    let e = ApiError::conflict("already_booked", "您已预约本场会员日，每场限约一次");
    match booking_id {
        Some(id) => e.with_detail("booking_id", id),
        None => e,
    }
}

/// Whether `m` may book `target` at `now`: the event is live, their tier is high enough, booking
/// has opened for their tier (the general opening minus their tier's lead hours) and not closed.
/// The server's clock decides; the client's is never asked.
pub fn gate(
    target: &Target,
    tiers: &TierTable,
    m: &member::Model,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<(), ApiError> {
    let (event, slot) = (&target.event, &target.slot);
    if event.status == event_status::CANCELLED || slot.status == slot_status::CANCELLED {
        return Err(booking_closed("该会员日活动已取消"));
    }
    let (tier, _, _) = tiers.effective(m, today);
    if let Some(min) = event.min_tier_id.and_then(|id| tiers.by_id(id)) {
        if tier.rank < min.rank {
            return Err(ApiError::conflict(
                "tier_too_low",
                format!("本场会员日仅限{}及以上会员预约", min.name),
            )
            .with_detail("min_tier", min.code.clone()));
        }
    }
    if now >= event.closes_at || now >= slot.starts_at {
        return Err(booking_closed("本场会员日预约已截止"));
    }
    let opens_at = opens_for(event, tier.booking_lead_hours);
    if now < opens_at {
        return Err(
            ApiError::conflict("not_open_yet", "尚未开放预约，请在开放时间后再来")
                .with_detail("opens_at", json!(opens_at)),
        );
    }
    Ok(())
}

/// The live booking `member_id` holds for `event_id`, if any.
pub async fn live_booking(
    conn: &impl ConnectionTrait,
    event_id: i64,
    member_id: i64,
) -> Result<Option<booking::Model>, DbErr> {
    booking::Entity::find()
        .filter(booking::Column::EventId.eq(event_id))
        .filter(booking::Column::MemberId.eq(member_id))
        .filter(booking::Column::Status.ne(status::CANCELLED))
        .one(conn)
        .await
}

/// Why a conditional UPDATE on a slot touched nothing: the slot was cancelled meanwhile, or it
/// is full.
async fn refusal_of(txn: &DatabaseTransaction, slot_id: i64) -> Result<ApiError, ApiError> {
    let slot = event_slot::Entity::find_by_id(slot_id)
        .one(txn)
        .await?
        .ok_or_else(slot_not_found)?;
    Ok(if slot.status == slot_status::CANCELLED {
        booking_closed("该会员日活动已取消")
    } else {
        slot_full()
    })
}

fn message_payload(target: &Target, b_code: &str, member_id: i64) -> serde_json::Value {
    json!({
        "member_id": member_id,
        "booking_code": b_code,
        "event_id": target.event.id,
        "event_title": target.event.title,
        "store_id": target.event.store_id,
        "slot_id": target.slot.id,
        "starts_at": target.slot.starts_at,
        "ends_at": target.slot.ends_at,
        "service": target.slot.service,
    })
}

/// Takes one place of `slot_id` for `member_id`. The place is taken by the statement (the
/// slot's row is locked from here to the commit, so this is the last thing but one); the
/// booking's insert then meets the unique index, which refuses a second live booking of the
/// member for the event. Any refusal returns an error and the caller rolls everything back.
pub async fn book(
    txn: &DatabaseTransaction,
    target: &Target,
    m: &member::Model,
    now: DateTime<Utc>,
) -> Result<booking::Model, ApiError> {
    let code = new_code();
    // Queued first so the slot's lock is held for as few statements as possible; it commits
    // or rolls back with the booking.
    outbox::queue(
        txn,
        outbox::kind::BOOKING_CONFIRMED,
        m.customer_id,
        format!("booking:{code}"),
        message_payload(target, &code, m.id),
        now,
    )
    .await?;
    let taken = event_slot::Entity::update_many()
        .col_expr(
            event_slot::Column::Booked,
            Expr::col(event_slot::Column::Booked).add(1),
        )
        .filter(event_slot::Column::Id.eq(target.slot.id))
        .filter(event_slot::Column::Status.eq(slot_status::OPEN))
        .filter(Expr::col(event_slot::Column::Booked).lt(Expr::col(event_slot::Column::Capacity)))
        .exec(txn)
        .await?;
    if taken.rows_affected == 0 {
        return Err(refusal_of(txn, target.slot.id).await?);
    }
    let inserted = booking::ActiveModel {
        code: Set(code),
        event_id: Set(target.event.id),
        slot_id: Set(target.slot.id),
        member_id: Set(m.id),
        customer_id: Set(m.customer_id),
        status: Set(status::BOOKED.into()),
        via: Set(via::MEMBER.into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await;
    match inserted {
        Ok(b) => Ok(b),
        Err(e) if db::is_unique_violation(&e) => Err(already_booked(None)),
        Err(e) => Err(e.into()),
    }
}

/// Takes `slot_id`'s row lock without changing anything that matters, so that what follows
/// runs in the same lock order as booking.
async fn lock_slot(
    txn: &DatabaseTransaction,
    slot_id: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    event_slot::Entity::update_many()
        .col_expr(event_slot::Column::UpdatedAt, Expr::value(now))
        .filter(event_slot::Column::Id.eq(slot_id))
        .exec(txn)
        .await
        .map(|_| ())
}

async fn release_place(txn: &DatabaseTransaction, slot_id: i64) -> Result<(), DbErr> {
    event_slot::Entity::update_many()
        .col_expr(
            event_slot::Column::Booked,
            Expr::col(event_slot::Column::Booked).sub(1),
        )
        .filter(event_slot::Column::Id.eq(slot_id))
        .filter(event_slot::Column::Booked.gt(0))
        .exec(txn)
        .await
        .map(|_| ())
}

/// What a cancellation did.
pub struct Cancelled {
    pub booking: booking::Model,
    /// False when the booking was already cancelled (a retry): nothing changed.
    pub changed: bool,
    /// Bookings made for waiting members with the freed place.
    pub promoted: Vec<booking::Model>,
}

/// Cancels booking `booking_id` (already checked to be the caller's, and within its
/// deadline), frees its place and gives it to the first waiting member, all in `txn`.
pub async fn cancel(
    txn: &DatabaseTransaction,
    booking_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Cancelled, ApiError> {
    let b = booking::Entity::find_by_id(booking_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("预约"))?;
    lock_slot(txn, b.slot_id, now).await?;
    // The booking's state decides, read by the statement itself: of two racing cancellations
    // exactly one sees `booked`, so the place is freed (and a member promoted) once.
    let hit = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::value(status::CANCELLED))
        .col_expr(booking::Column::CancelledAt, Expr::value(now))
        .col_expr(booking::Column::CancelledBy, Expr::value(by))
        .filter(booking::Column::Id.eq(booking_id))
        .filter(booking::Column::Status.eq(status::BOOKED))
        .exec(txn)
        .await?;
    let b = booking::Entity::find_by_id(booking_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("预约"))?;
    if hit.rows_affected == 0 {
        return if b.status == status::CANCELLED {
            Ok(Cancelled {
                booking: b,
                changed: false,
                promoted: Vec::new(),
            })
        } else {
            Err(
                ApiError::conflict("not_cancellable", "该预约已到店签到或已过期，无法取消")
                    .with_detail("status", b.status.clone()),
            )
        };
    }
    release_place(txn, b.slot_id).await?;
    let promoted = promote(txn, b.slot_id, now).await?;
    Ok(Cancelled {
        booking: b,
        changed: true,
        promoted,
    })
}

/// A bound on promotions per call, far above any slot's waitlist; it only guards the loop.
const MAX_PROMOTIONS: usize = 10_000;

/// Fills `slot_id`'s free places from its waitlist, first come first served, in `txn`, which
/// must already hold the slot's row (a cancellation or a capacity change). A waiting member
/// who meanwhile holds another booking of the event is passed over (`skipped`). Each promoted
/// member gets a booking and a queued `waitlist_promoted` message.
pub async fn promote(
    txn: &DatabaseTransaction,
    slot_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<booking::Model>, ApiError> {
    let mut promoted = Vec::new();
    for _ in 0..MAX_PROMOTIONS {
        let Some(entry) = waitlist_entry::Entity::find()
            .filter(waitlist_entry::Column::SlotId.eq(slot_id))
            .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING))
            .order_by_asc(waitlist_entry::Column::Id)
            .one(txn)
            .await?
        else {
            break;
        };
        if live_booking(txn, entry.event_id, entry.member_id)
            .await?
            .is_some()
        {
            set_entry_status(txn, entry.id, waitlist_status::SKIPPED, None, now).await?;
            continue;
        }
        let taken = event_slot::Entity::update_many()
            .col_expr(
                event_slot::Column::Booked,
                Expr::col(event_slot::Column::Booked).add(1),
            )
            .filter(event_slot::Column::Id.eq(slot_id))
            .filter(event_slot::Column::Status.eq(slot_status::OPEN))
            .filter(
                Expr::col(event_slot::Column::Booked).lt(Expr::col(event_slot::Column::Capacity)),
            )
            .exec(txn)
            .await?;
        if taken.rows_affected == 0 {
            break;
        }
        // Claimed by the statement: a member leaving the waitlist at this moment either
        // leaves first (and is not promoted) or finds themselves promoted.
        if !set_entry_status(txn, entry.id, waitlist_status::PROMOTED, None, now).await? {
            release_place(txn, slot_id).await?;
            continue;
        }
        let code = new_code();
        // DO NOTHING rather than an error: a statement that fails aborts a PostgreSQL
        // transaction, and the member's own booking elsewhere in the event may commit just now.
        let inserted = booking::Entity::insert(booking::ActiveModel {
            code: Set(code.clone()),
            event_id: Set(entry.event_id),
            slot_id: Set(slot_id),
            member_id: Set(entry.member_id),
            customer_id: Set(entry.customer_id),
            status: Set(status::BOOKED.into()),
            via: Set(via::WAITLIST.into()),
            created_at: Set(now),
            ..Default::default()
        })
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(txn)
        .await?;
        let Some(b) = (if inserted > 0 {
            booking::Entity::find()
                .filter(booking::Column::Code.eq(code))
                .one(txn)
                .await?
        } else {
            None
        }) else {
            release_place(txn, slot_id).await?;
            set_entry_status(txn, entry.id, waitlist_status::SKIPPED, None, now).await?;
            continue;
        };
        waitlist_entry::Entity::update_many()
            .col_expr(waitlist_entry::Column::BookingId, Expr::value(b.id))
            .filter(waitlist_entry::Column::Id.eq(entry.id))
            .exec(txn)
            .await?;
        let target = Target {
            event: member_event::Entity::find_by_id(b.event_id)
                .one(txn)
                .await?
                .ok_or_else(event_not_found)?,
            slot: event_slot::Entity::find_by_id(slot_id)
                .one(txn)
                .await?
                .ok_or_else(slot_not_found)?,
        };
        outbox::queue(
            txn,
            outbox::kind::WAITLIST_PROMOTED,
            b.customer_id,
            format!("booking:{}", b.code),
            message_payload(&target, &b.code, b.member_id),
            now,
        )
        .await?;
        promoted.push(b);
    }
    Ok(promoted)
}

/// Moves a waiting entry to `to`; true when it was still waiting.
async fn set_entry_status(
    txn: &DatabaseTransaction,
    entry_id: i64,
    to: &str,
    member_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut q = waitlist_entry::Entity::update_many()
        .col_expr(waitlist_entry::Column::Status, Expr::value(to))
        .col_expr(waitlist_entry::Column::UpdatedAt, Expr::value(now))
        .filter(waitlist_entry::Column::Id.eq(entry_id))
        .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING));
    if let Some(member_id) = member_id {
        q = q.filter(waitlist_entry::Column::MemberId.eq(member_id));
    }
    Ok(q.exec(txn).await?.rows_affected > 0)
}

/// 1 for the first waiting member of the slot.
pub async fn position(
    conn: &impl ConnectionTrait,
    entry: &waitlist_entry::Model,
) -> Result<Option<u64>, DbErr> {
    if entry.status != waitlist_status::WAITING {
        return Ok(None);
    }
    let ahead = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::SlotId.eq(entry.slot_id))
        .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING))
        .filter(waitlist_entry::Column::Id.lte(entry.id))
        .count(conn)
        .await?;
    Ok(Some(ahead))
}

/// Puts `m` on `target`'s waitlist; returns the entry and whether it is new (a member already
/// waiting gets their entry back). Only a full slot has a waitlist: with a place free the
/// member is told to book it.
pub async fn join_waitlist(
    txn: &DatabaseTransaction,
    target: &Target,
    m: &member::Model,
    now: DateTime<Utc>,
) -> Result<(waitlist_entry::Model, bool), ApiError> {
    // Under the slot's lock, so no cancellation can free a place between "it is full" and the
    // entry existing: the place would then go to nobody.
    lock_slot(txn, target.slot.id, now).await?;
    if let Some(entry) = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::SlotId.eq(target.slot.id))
        .filter(waitlist_entry::Column::MemberId.eq(m.id))
        .filter(waitlist_entry::Column::Status.eq(waitlist_status::WAITING))
        .one(txn)
        .await?
    {
        return Ok((entry, false));
    }
    if let Some(b) = live_booking(txn, target.event.id, m.id).await? {
        return Err(already_booked(Some(b.id)));
    }
    let slot = event_slot::Entity::find_by_id(target.slot.id)
        .one(txn)
        .await?
        .ok_or_else(slot_not_found)?;
    if slot.status == slot_status::CANCELLED {
        return Err(booking_closed("该会员日活动已取消"));
    }
    if slot.booked < slot.capacity {
        return Err(
            ApiError::conflict("slot_available", "该时段还有名额，请直接预约")
                .with_detail("left", slot.capacity - slot.booked),
        );
    }
    let entry = waitlist_entry::ActiveModel {
        event_id: Set(target.event.id),
        slot_id: Set(target.slot.id),
        member_id: Set(m.id),
        customer_id: Set(m.customer_id),
        status: Set(waitlist_status::WAITING.into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok((entry, true))
}

/// Takes `member_id` off the waitlist entry `entry_id`. Leaving twice is not an error; an
/// entry already promoted is a 409 naming the booking, which the member cancels instead.
pub async fn leave_waitlist(
    txn: &DatabaseTransaction,
    entry_id: i64,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<waitlist_entry::Model, ApiError> {
    let entry = waitlist_entry::Entity::find_by_id(entry_id)
        .one(txn)
        .await?
        .filter(|e| e.member_id == member_id)
        .ok_or_else(|| ApiError::not_found("候补"))?;
    lock_slot(txn, entry.slot_id, now).await?;
    set_entry_status(txn, entry_id, waitlist_status::LEFT, Some(member_id), now).await?;
    let entry = waitlist_entry::Entity::find_by_id(entry_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("候补"))?;
    if entry.status == waitlist_status::PROMOTED {
        let mut e = ApiError::conflict("already_promoted", "您已候补成功，如需取消请取消该预约");
        if let Some(id) = entry.booking_id {
            e = e.with_detail("booking_id", id);
        }
        return Err(e);
    }
    Ok(entry)
}
