//! Booking jobs, run like the loyalty jobs (`memberhub jobs run`, the admin endpoint, the
//! in-server schedule) and also every few minutes by the scheduler, since a no-show is due at
//! the end of its slot and a booking made the day before still deserves its reminder. Each
//! booking is handled by one conditional UPDATE in its own short transaction, so running a
//! job twice, or on two instances at once, does each thing once.

use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use entity::{booking, customer, event_slot, member_event};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::{event_status, status};
use crate::db;
use crate::error::ApiError;
use crate::loyalty::jobs::{Counts, JobContext};
use crate::outbox;

const PAGE: u64 = 500;

/// Reminders are sent from this hour (business time) of the day before the event, not at the
/// small hours when the nightly run queues them.
const REMINDER_HOUR: i64 = 10;

/// Queues the day-before reminder for every live booking of the events on `date + 1`. The
/// booking's `reminder_queued_at` is set by the same conditional UPDATE that claims it, and
/// the outbox refuses a second (kind, reference), so each booking is reminded once.
pub async fn reminders(ctx: &JobContext<'_>, date: NaiveDate) -> Result<Counts, ApiError> {
    let mut done = Counts::new(&["queued", "failed"]);
    let Some(event_date) = date.checked_add_days(Days::new(1)) else {
        return Ok(done);
    };
    let cal = ctx.settings.loyalty.calendar();
    let now = ctx.clock.now();
    let due_at = std::cmp::max(now, cal.start_of(date) + Duration::hours(REMINDER_HOUR));
    let events: Vec<member_event::Model> = member_event::Entity::find()
        .filter(member_event::Column::EventDate.eq(event_date))
        .filter(member_event::Column::Status.eq(event_status::PUBLISHED))
        .all(ctx.db)
        .await?;
    for event in events {
        let mut after = 0i64;
        loop {
            let page: Vec<booking::Model> = booking::Entity::find()
                .filter(booking::Column::EventId.eq(event.id))
                .filter(booking::Column::Status.eq(status::BOOKED))
                .filter(booking::Column::ReminderQueuedAt.is_null())
                .filter(booking::Column::Id.gt(after))
                .order_by_asc(booking::Column::Id)
                .limit(PAGE)
                .all(ctx.db)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            for b in page {
                let (event, booking_id) = (event.clone(), b.id);
                let queued = db::write(ctx.db, move |txn| {
                    Box::pin(async move { remind(txn, &event, booking_id, now, due_at).await })
                })
                .await;
                match queued {
                    Ok(true) => done.add("queued", 1),
                    Ok(false) => {}
                    Err(e) => {
                        done.add("failed", 1);
                        tracing::error!(booking_id, error = %e.describe(), "booking-reminders: cannot queue a reminder");
                    }
                }
            }
        }
    }
    Ok(done)
}

async fn remind(
    txn: &DatabaseTransaction,
    event: &member_event::Model,
    booking_id: i64,
    now: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let claimed = booking::Entity::update_many()
        .col_expr(booking::Column::ReminderQueuedAt, Expr::value(now))
        .filter(booking::Column::Id.eq(booking_id))
        .filter(booking::Column::Status.eq(status::BOOKED))
        .filter(booking::Column::ReminderQueuedAt.is_null())
        .exec(txn)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(false);
    }
    let Some(b) = booking::Entity::find_by_id(booking_id).one(txn).await? else {
        return Ok(false);
    };
    let slot = event_slot::Entity::find_by_id(b.slot_id).one(txn).await?;
    outbox::queue(
        txn,
        outbox::kind::BOOKING_REMINDER,
        b.customer_id,
        format!("booking:{}", b.code),
        json!({
            "member_id": b.member_id,
            "booking_code": b.code,
            "event_id": event.id,
            "event_title": event.title,
            "store_id": event.store_id,
            "slot_id": b.slot_id,
            "starts_at": slot.as_ref().map(|s| s.starts_at),
            "ends_at": slot.as_ref().map(|s| s.ends_at),
            "service": slot.as_ref().map(|s| s.service.clone()),
        }),
        due_at,
    )
    .await?;
    Ok(true)
}

/// Marks as no-shows the live bookings not checked in by the end of their slot, for slots
/// that ended by the end of `date` and by now, and counts each on its customer in the same
/// transaction.
pub async fn no_shows(ctx: &JobContext<'_>, date: NaiveDate) -> Result<Counts, ApiError> {
    let mut done = Counts::new(&["marked", "failed"]);
    let cal = ctx.settings.loyalty.calendar();
    let now = ctx.clock.now();
    let end_of_date = date
        .checked_add_days(Days::new(1))
        .map(|next| cal.start_of(next))
        .unwrap_or(now);
    let cutoff = std::cmp::min(now, end_of_date);
    let ended = Query::select()
        .column(event_slot::Column::Id)
        .from(event_slot::Entity)
        .and_where(Expr::col(event_slot::Column::EndsAt).lte(cutoff))
        .to_owned();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, i64)> = booking::Entity::find()
            .select_only()
            .column(booking::Column::Id)
            .column(booking::Column::CustomerId)
            .filter(booking::Column::Status.eq(status::BOOKED))
            .filter(booking::Column::SlotId.in_subquery(ended.clone()))
            .filter(booking::Column::Id.gt(after))
            .order_by_asc(booking::Column::Id)
            .limit(PAGE)
            .into_tuple()
            .all(ctx.db)
            .await?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        after = last;
        for (booking_id, customer_id) in page {
            let marked = db::write(ctx.db, move |txn| {
                Box::pin(async move { mark_no_show(txn, booking_id, customer_id, now).await })
            })
            .await;
            match marked {
                Ok(true) => done.add("marked", 1),
                Ok(false) => {}
                Err(e) => {
                    done.add("failed", 1);
                    tracing::error!(booking_id, error = %e.describe(), "booking-no-shows: cannot mark a booking");
                }
            }
        }
    }
    Ok(done)
}

async fn mark_no_show(
    txn: &DatabaseTransaction,
    booking_id: i64,
    customer_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    // A check-in at the last minute and this job meet on the booking's status: one wins.
    let hit = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::value(status::NO_SHOW))
        .col_expr(booking::Column::NoShowAt, Expr::value(now))
        .filter(booking::Column::Id.eq(booking_id))
        .filter(booking::Column::Status.eq(status::BOOKED))
        .exec(txn)
        .await?;
    if hit.rows_affected == 0 {
        return Ok(false);
    }
    customer::Entity::update_many()
        .col_expr(
            customer::Column::NoShowCount,
            Expr::col(customer::Column::NoShowCount).add(1),
        )
        .filter(customer::Column::Id.eq(customer_id))
        .exec(txn)
        .await?;
    Ok(true)
}
