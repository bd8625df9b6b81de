//! Member days (会员日, DESIGN section 5): a store's events, their slots, members booking them
//! with tier early access, the waitlist, check-in and no-shows.
//!
//! Capacity holds however many members press the button in the same second, on either
//! database and with any number of instances, because nothing reads a count and writes it
//! back: a slot's `booked` moves only by one conditional UPDATE (`booked < capacity`), and a
//! partial unique index allows one live booking per member per event. A cancellation frees
//! the place and promotes the first waiting member in the same transaction. The cache holds
//! only a short-lived "sold out" hint so that the thousands of requests after the last place
//! is gone do not queue on the database; the database stays the record.
//!
//! Lock order, the same everywhere so PostgreSQL never deadlocks: a slot's row, then booking
//! rows (booking takes the slot's place, then inserts; cancelling touches the slot first, then
//! the booking; promotion runs under the slot it fills; cancelling an event takes its slots,
//! then its bookings).

pub mod engine;
pub mod jobs;
pub mod member;
pub mod staff;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{event_slot, member_event};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cache::Cache;
use crate::error::ApiError;
use crate::loyalty::tiers::TierTable;

/// Booking states.
pub mod status {
    pub const BOOKED: &str = "booked";
    pub const CHECKED_IN: &str = "checked_in";
    pub const NO_SHOW: &str = "no_show";
    pub const CANCELLED: &str = "cancelled";
}

/// Event states: a draft is visible to staff only.
pub mod event_status {
    pub const DRAFT: &str = "draft";
    pub const PUBLISHED: &str = "published";
    pub const CANCELLED: &str = "cancelled";
}

pub mod slot_status {
    pub const OPEN: &str = "open";
    pub const CANCELLED: &str = "cancelled";
}

/// Waitlist entry states.
pub mod waitlist_status {
    pub const WAITING: &str = "waiting";
    pub const PROMOTED: &str = "promoted";
    /// The member left the waitlist.
    pub const LEFT: &str = "left";
    /// Their turn came while they held another booking of the event.
    pub const SKIPPED: &str = "skipped";
    /// The event was cancelled.
    pub const CANCELLED: &str = "cancelled";
}

/// How a booking came to be.
pub mod via {
    pub const MEMBER: &str = "member";
    pub const WAITLIST: &str = "waitlist";
}

/// Who cancelled a booking.
pub mod cancelled_by {
    pub const MEMBER: &str = "member";
    pub const STAFF: &str = "staff";
    pub const EVENT: &str = "event";
}

/// How long a "sold out" hint lives. A cancellation clears it at once; the lifetime only bounds
/// how long a hint written just after a cancellation's clear can hide a freed place.
const SOLD_OUT_TTL: StdDuration = StdDuration::from_secs(3);

fn sold_out_key(slot_id: i64) -> String {
    format!("booking:slot:{slot_id}:full")
}

/// True when the cache remembers `slot_id` as full. A cache that does not answer reads as
/// "not known to be full": the database decides.
pub async fn known_full(cache: &Cache, slot_id: i64) -> bool {
    matches!(cache.get(&sold_out_key(slot_id)).await, Ok(Some(_)))
}

pub async fn remember_full(cache: &Cache, slot_id: i64) {
    if let Err(e) = cache.set(&sold_out_key(slot_id), "1", SOLD_OUT_TTL).await {
        tracing::warn!(slot_id, error = %e, "cannot remember a full slot");
    }
}

/// Called after a commit that freed places (cancellation, capacity raised).
pub async fn forget_full(cache: &Cache, slot_ids: impl IntoIterator<Item = i64>) {
    for slot_id in slot_ids {
        if let Err(e) = cache.delete(&sold_out_key(slot_id)).await {
            tracing::warn!(slot_id, error = %e, "cannot clear a full slot's hint");
        }
    }
}

/// When `event` opens for a member of a tier with `lead_hours` early access.
pub fn opens_for(event: &member_event::Model, lead_hours: i32) -> DateTime<Utc> {
    event.opens_at - Duration::hours(i64::from(lead_hours.max(0)))
}

/// True when a published, bonus-bearing event of `store_id` falls on `date`: consumption at
/// that store that day earns the member-day bonus.
pub async fn is_member_day(
    conn: &impl ConnectionTrait,
    store_id: i64,
    date: NaiveDate,
) -> Result<bool, DbErr> {
    let n = member_event::Entity::find()
        .filter(member_event::Column::StoreId.eq(store_id))
        .filter(member_event::Column::EventDate.eq(date))
        .filter(member_event::Column::Status.eq(event_status::PUBLISHED))
        .filter(member_event::Column::PointsBonus.eq(true))
        .count(conn)
        .await?;
    Ok(n > 0)
}

const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A booking code for the desk: "B" and nine characters of an alphabet without look-alikes
/// (31^9, about 2.6e13). It always starts with a letter, so a path segment that is all
/// digits is an id and anything else a code.
pub fn new_code() -> String {
    std::iter::once('B')
        .chain(
            (0..9).map(|_| char::from(CODE_ALPHABET[rand::random_range(0..CODE_ALPHABET.len())])),
        )
        .collect()
}

/// A slot as both members and staff see it.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct SlotView {
    pub id: i64,
    pub event_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service: String,
    pub capacity: i32,
    pub booked: i32,
    /// Places still free.
    pub left: i32,
    /// `open` or `cancelled`.
    pub status: String,
}

impl From<&event_slot::Model> for SlotView {
    fn from(s: &event_slot::Model) -> Self {
        Self {
            id: s.id,
            event_id: s.event_id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            service: s.service.clone(),
            capacity: s.capacity,
            booked: s.booked,
            left: (s.capacity - s.booked).max(0),
            status: s.status.clone(),
        }
    }
}

/// The fields of an event every view shares.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct EventView {
    pub id: i64,
    pub store_id: i64,
    pub event_date: NaiveDate,
    pub title: String,
    pub description: String,
    /// The general opening time; higher tiers open earlier by their lead hours.
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    /// Bookings can be cancelled until then.
    pub cancel_deadline: DateTime<Utc>,
    pub min_tier_code: Option<String>,
    pub min_tier_name: Option<String>,
    /// Consumption at the store on the event's date earns the member-day bonus.
    pub points_bonus: bool,
    /// `draft`, `published` or `cancelled`.
    pub status: String,
    pub cancel_reason: Option<String>,
}

impl EventView {
    pub fn of(e: &member_event::Model, tiers: &TierTable) -> Self {
        let min_tier = e.min_tier_id.and_then(|id| tiers.by_id(id));
        Self {
            id: e.id,
            store_id: e.store_id,
            event_date: e.event_date,
            title: e.title.clone(),
            description: e.description.clone(),
            opens_at: e.opens_at,
            closes_at: e.closes_at,
            cancel_deadline: e.cancel_deadline,
            min_tier_code: min_tier.map(|t| t.code.clone()),
            min_tier_name: min_tier.map(|t| t.name.clone()),
            points_bonus: e.points_bonus,
            status: e.status.clone(),
            cancel_reason: e.cancel_reason.clone(),
        }
    }
}

/// 404 for an event a member may not see (a draft, or none at all).
pub fn event_not_found() -> ApiError {
    ApiError::not_found("会员日活动")
}

pub fn slot_not_found() -> ApiError {
    ApiError::not_found("预约时段")
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    member::routes(cfg);
    staff::routes(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_start_with_a_letter_and_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(code.len(), 10);
            assert!(code.starts_with('B'));
            assert!(code.bytes().skip(1).all(|b| CODE_ALPHABET.contains(&b)));
            assert!(!code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
