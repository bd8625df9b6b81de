//! The outbox: every message is a row before anything is sent. Other modules queue here inside
//! their own transactions; the sender (messaging) claims pending rows later. A (kind, reference)
//! pair is unique, so queuing the same message twice (a job run twice) queues it once.

use chrono::{DateTime, Utc};
use entity::outbox_message;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use serde_json::Value;

/// Message kinds of DESIGN section 7 queued by the loyalty and booking features.
pub mod kind {
    pub const POINTS_EXPIRING: &str = "points_expiring";
    pub const TIER_CHANGED: &str = "tier_changed";
    pub const RETENTION_REMINDER: &str = "retention_reminder";
    pub const BOOKING_CONFIRMED: &str = "booking_confirmed";
    pub const BOOKING_REMINDER: &str = "booking_reminder";
    pub const WAITLIST_PROMOTED: &str = "waitlist_promoted";
    pub const EVENT_CANCELLED: &str = "event_cancelled";
    /// Staff cancelled one member's booking (the member cancelling their own hears nothing).
    pub const BOOKING_CANCELLED: &str = "booking_cancelled";
    /// The daily birthday greeting (an automation).
    pub const BIRTHDAY: &str = "birthday";
    /// The daily recall of dormant customers (an automation).
    pub const RECALL: &str = "recall";
    /// Reserved for campaigns: staff write the message.
    pub const CUSTOM: &str = "custom";
    /// Marketing kinds: sent only with the customer's consent and under the frequency cap
    /// (`messaging.marketing_cap_days`). Every other kind is transactional and exempt.
    pub const MARKETING: [&str; 3] = [BIRTHDAY, RECALL, CUSTOM];

    pub fn is_marketing(kind: &str) -> bool {
        MARKETING.contains(&kind)
    }
}

/// Queues a message; true when it is new, false when (kind, reference) was already queued.
pub async fn queue(
    conn: &impl ConnectionTrait,
    kind: &str,
    customer_id: i64,
    reference: String,
    payload: Value,
    due_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    queue_at(
        conn,
        kind,
        customer_id,
        reference,
        payload,
        due_at,
        Utc::now(),
    )
    .await
}

/// [`queue`] with the row's `created_at` given: jobs that later ask "was this customer sent
/// one recently" pass the server clock, so the question has the same answer when a job is run
/// for a past date or under a pinned clock.
pub async fn queue_at(
    conn: &impl ConnectionTrait,
    kind: &str,
    customer_id: i64,
    reference: String,
    payload: Value,
    due_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = outbox_message::Entity::insert(outbox_message::ActiveModel {
        kind: Set(kind.to_string()),
        customer_id: Set(customer_id),
        reference: Set(reference),
        payload: Set(payload.to_string()),
        status: Set("pending".into()),
        due_at: Set(due_at),
        created_at: Set(created_at),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            outbox_message::Column::Kind,
            outbox_message::Column::Reference,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted > 0)
}
