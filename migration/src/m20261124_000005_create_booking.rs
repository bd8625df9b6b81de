use sea_orm_migration::{prelude::*, schema::*};

use crate::shared::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MemberEvent::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MemberEvent::Id))
                    .col(big_integer(MemberEvent::StoreId))
                    .col(date(MemberEvent::EventDate))
                    .col(string_len(MemberEvent::Title, 40))
                    .col(text(MemberEvent::Description))
                    // The general opening; each tier sees it earlier by its lead hours.
                    .col(timestamp_with_time_zone(MemberEvent::OpensAt))
                    .col(timestamp_with_time_zone(MemberEvent::ClosesAt))
                    .col(timestamp_with_time_zone(MemberEvent::CancelDeadline))
                    .col(big_integer_null(MemberEvent::MinTierId))
                    // Consumption at the store on the event's date earns the member-day bonus.
                    .col(boolean(MemberEvent::PointsBonus))
                    // draft, published, cancelled
                    .col(string_len(MemberEvent::Status, 20))
                    .col(string_len_null(MemberEvent::CancelReason, 200))
                    .col(big_integer_null(MemberEvent::CreatedBy))
                    .col(timestamp_with_time_zone(MemberEvent::CreatedAt))
                    .col(timestamp_with_time_zone(MemberEvent::UpdatedAt))
                    .col(timestamp_with_time_zone_null(MemberEvent::PublishedAt))
                    .col(timestamp_with_time_zone_null(MemberEvent::CancelledAt))
                    .foreign_key(&mut fk(
                        (MemberEvent::Table, MemberEvent::StoreId),
                        (Store::Table, Store::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_member_event_store_date",
            MemberEvent::Table,
            vec![
                MemberEvent::StoreId.into_iden(),
                MemberEvent::EventDate.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_member_event_status_date",
            MemberEvent::Table,
            vec![
                MemberEvent::Status.into_iden(),
                MemberEvent::EventDate.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventSlot::Table)
                    .if_not_exists()
                    .col(big_pk_auto(EventSlot::Id))
                    .col(big_integer(EventSlot::EventId))
                    .col(timestamp_with_time_zone(EventSlot::StartsAt))
                    .col(timestamp_with_time_zone(EventSlot::EndsAt))
                    .col(string_len(EventSlot::Service, 60))
                    .col(integer(EventSlot::Capacity))
                    // Active bookings; moved only by conditional UPDATEs. Not indexed, so
                    // PostgreSQL can update the hot row in place (HOT).
                    .col(integer(EventSlot::Booked).default(0))
                    // open, cancelled
                    .col(string_len(EventSlot::Status, 20))
                    .col(timestamp_with_time_zone(EventSlot::CreatedAt))
                    .col(timestamp_with_time_zone(EventSlot::UpdatedAt))
                    // The backstop behind the conditional statements.
                    .check(
                        Expr::col(EventSlot::Booked)
                            .gte(0)
                            .and(Expr::col(EventSlot::Booked).lte(Expr::col(EventSlot::Capacity))),
                    )
                    .foreign_key(&mut fk(
                        (EventSlot::Table, EventSlot::EventId),
                        (MemberEvent::Table, MemberEvent::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_event_slot_event",
            EventSlot::Table,
            vec![EventSlot::EventId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Booking::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Booking::Id))
                    // Shown as text and QR to the desk, which checks the member in with it.
                    .col(string_len(Booking::Code, 16).unique_key())
                    .col(big_integer(Booking::EventId))
                    .col(big_integer(Booking::SlotId))
                    .col(big_integer(Booking::MemberId))
                    .col(big_integer(Booking::CustomerId))
                    // booked, checked_in, no_show, cancelled
                    .col(string_len(Booking::Status, 20))
                    // member (booked it), waitlist (promoted)
                    .col(string_len(Booking::Via, 20))
                    .col(timestamp_with_time_zone(Booking::CreatedAt))
                    .col(timestamp_with_time_zone_null(Booking::CancelledAt))
                    // member, staff, event
                    .col(string_len_null(Booking::CancelledBy, 20))
                    .col(timestamp_with_time_zone_null(Booking::CheckedInAt))
                    .col(big_integer_null(Booking::CheckedInBy))
                    .col(timestamp_with_time_zone_null(Booking::NoShowAt))
                    .col(timestamp_with_time_zone_null(Booking::ReminderQueuedAt))
                    .foreign_key(&mut fk(
                        (Booking::Table, Booking::SlotId),
                        (EventSlot::Table, EventSlot::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Booking::Table, Booking::MemberId),
                        (Member::Table, Member::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_booking_slot_status",
            Booking::Table,
            vec![Booking::SlotId.into_iden(), Booking::Status.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_booking_event_status",
            Booking::Table,
            vec![Booking::EventId.into_iden(), Booking::Status.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_booking_member",
            Booking::Table,
            vec![Booking::MemberId.into_iden(), Booking::Id.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WaitlistEntry::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WaitlistEntry::Id))
                    .col(big_integer(WaitlistEntry::EventId))
                    .col(big_integer(WaitlistEntry::SlotId))
                    .col(big_integer(WaitlistEntry::MemberId))
                    .col(big_integer(WaitlistEntry::CustomerId))
                    // waiting, promoted, left (by the member), skipped (already booked
                    // elsewhere in the event when their turn came), cancelled (event cancelled)
                    .col(string_len(WaitlistEntry::Status, 20))
                    .col(big_integer_null(WaitlistEntry::BookingId))
                    .col(timestamp_with_time_zone(WaitlistEntry::CreatedAt))
                    .col(timestamp_with_time_zone(WaitlistEntry::UpdatedAt))
                    .foreign_key(&mut fk(
                        (WaitlistEntry::Table, WaitlistEntry::SlotId),
                        (EventSlot::Table, EventSlot::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_waitlist_slot_status",
            WaitlistEntry::Table,
            vec![
                WaitlistEntry::SlotId.into_iden(),
                WaitlistEntry::Status.into_iden(),
                WaitlistEntry::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_waitlist_member",
            WaitlistEntry::Table,
            vec![WaitlistEntry::MemberId.into_iden()],
            false,
        )
        .await?;

        // The arbiters. Partial unique indexes (same syntax on both databases): one live
        // booking per member per event, however many requests race, while a cancelled one
        // leaves room to book again; one waiting place per member per slot.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_booking_member_event_active ON booking (event_id, member_id) \
             WHERE status <> 'cancelled'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_waitlist_member_slot_waiting ON waitlist_entry \
             (slot_id, member_id) WHERE status = 'waiting'",
        )
        .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .add_column(integer(Customer::NoShowCount).default(0))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WaitlistEntry::Table.into_iden(),
            Booking::Table.into_iden(),
            EventSlot::Table.into_iden(),
            MemberEvent::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .drop_column(Customer::NoShowCount)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Store {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    NoShowCount,
}

#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MemberEvent {
    Table,
    Id,
    StoreId,
    EventDate,
    Title,
    Description,
    OpensAt,
    ClosesAt,
    CancelDeadline,
    MinTierId,
    PointsBonus,
    Status,
    CancelReason,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    PublishedAt,
    CancelledAt,
}

#[derive(DeriveIden)]
enum EventSlot {
    Table,
    Id,
    EventId,
    StartsAt,
    EndsAt,
    Service,
    Capacity,
    Booked,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Booking {
    Table,
    Id,
    Code,
    EventId,
    SlotId,
    MemberId,
    CustomerId,
    Status,
    Via,
    CreatedAt,
    CancelledAt,
    CancelledBy,
    CheckedInAt,
    CheckedInBy,
    NoShowAt,
    ReminderQueuedAt,
}

#[derive(DeriveIden)]
enum WaitlistEntry {
    Table,
    Id,
    EventId,
    SlotId,
    MemberId,
    CustomerId,
    Status,
    BookingId,
    CreatedAt,
    UpdatedAt,
}
