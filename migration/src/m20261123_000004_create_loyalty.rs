use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::shared::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The default tier table of DESIGN section 3; admins edit it later through the staff API.
const DEFAULT_TIERS: &[(&str, &str, i64, i32, i32, i32, &str)] = &[
    (
        "normal",
        "普通会员",
        0,
        95,
        100,
        0,
        r#"["消费享95折","消费1元积1分","生日月积分双倍"]"#,
    ),
    (
        "gold",
        "黄金会员",
        3_000_000,
        90,
        120,
        24,
        r#"["消费享9折","积分1.2倍","会员日提前24小时预约"]"#,
    ),
    (
        "platinum",
        "铂金会员",
        8_000_000,
        88,
        150,
        48,
        r#"["消费享88折","积分1.5倍","会员日提前48小时预约"]"#,
    ),
    (
        "diamond",
        "星钻会员",
        20_000_000,
        85,
        200,
        72,
        r#"["消费享85折","积分2倍","会员日提前72小时预约"]"#,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tier::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Tier::Id))
                    .col(string_len(Tier::Code, 20).unique_key())
                    .col(string_len(Tier::Name, 20))
                    // 0 is the entry tier; higher is better. Unique, so the order is total.
                    .col(integer(Tier::Rank).unique_key())
                    // Net consumption over the trailing 12 months that qualifies, in fen.
                    .col(big_integer(Tier::ThresholdFen))
                    // 95 means 95折.
                    .col(integer(Tier::DiscountPct))
                    // 120 means x1.2; integers keep points arithmetic exact.
                    .col(integer(Tier::MultiplierPct))
                    .col(integer(Tier::BookingLeadHours))
                    // JSON array of benefit lines shown to members.
                    .col(text(Tier::Benefits))
                    .col(timestamp_with_time_zone(Tier::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Member::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Member::Id))
                    .col(big_integer(Member::CustomerId).unique_key())
                    .col(string_len(Member::MemberNo, 20).unique_key())
                    .col(big_integer(Member::TierId))
                    // NULL: the entry tier, which needs no renewal.
                    .col(date_null(Member::TierValidUntil))
                    // join, upgrade, renewal, downgrade, refund
                    .col(string_len(Member::TierSource, 20))
                    // The tier held before the last upgrade, restored if a refund undoes it.
                    .col(big_integer_null(Member::PrevTierId))
                    .col(date_null(Member::PrevTierValidUntil))
                    .col(big_integer_null(Member::UpgradeConsumptionId))
                    // A tier set by staff by hand: a floor until its own end date.
                    .col(big_integer_null(Member::ManualTierId))
                    .col(date_null(Member::ManualTierUntil))
                    // Moves only by conditional UPDATE in the same transaction as its entry.
                    .col(big_integer(Member::PointsBalance).default(0))
                    .col(string_len(Member::JoinedVia, 20))
                    .col(timestamp_with_time_zone(Member::JoinedAt))
                    .col(timestamp_with_time_zone(Member::UpdatedAt))
                    .foreign_key(&mut fk(
                        (Member::Table, Member::CustomerId),
                        (Customer::Table, Customer::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Member::Table, Member::TierId),
                        (Tier::Table, Tier::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_member_tier_valid_until",
            Member::Table,
            vec![Member::TierValidUntil.into_iden()],
            false,
        )
        .await?;

        for column in [
            integer(Customer::VisitCount).default(0).to_owned(),
            big_integer(Customer::LifetimeSpendFen)
                .default(0)
                .to_owned(),
            timestamp_with_time_zone_null(Customer::FirstVisitAt),
            timestamp_with_time_zone_null(Customer::LastVisitAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Customer::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Consumption::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Consumption::Id))
                    .col(big_integer(Consumption::CustomerId))
                    .col(big_integer(Consumption::StoreId))
                    .col(string_len(Consumption::OrderNo, 64))
                    // JSON array of {name, quantity, amount_fen}.
                    .col(text(Consumption::Items))
                    .col(big_integer(Consumption::PaidFen))
                    .col(big_integer(Consumption::RefundedFen).default(0))
                    .col(timestamp_with_time_zone(Consumption::OccurredAt))
                    .col(date(Consumption::BusinessDate))
                    .col(big_integer_null(Consumption::StaffId))
                    .col(big_integer_null(Consumption::MemberId))
                    .col(big_integer(Consumption::PointsEarned).default(0))
                    .col(string_len_null(Consumption::Bonus, 20))
                    .col(big_integer_null(Consumption::LotId))
                    .col(timestamp_with_time_zone(Consumption::CreatedAt))
                    .foreign_key(&mut fk(
                        (Consumption::Table, Consumption::CustomerId),
                        (Customer::Table, Customer::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Consumption::Table, Consumption::StoreId),
                        (Store::Table, Store::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_consumption_store_order",
            Consumption::Table,
            vec![
                Consumption::StoreId.into_iden(),
                Consumption::OrderNo.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_consumption_customer",
            Consumption::Table,
            vec![
                Consumption::CustomerId.into_iden(),
                Consumption::OccurredAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsumptionRefund::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ConsumptionRefund::Id))
                    .col(big_integer(ConsumptionRefund::ConsumptionId))
                    .col(big_integer(ConsumptionRefund::AmountFen))
                    .col(big_integer(ConsumptionRefund::PointsReversed))
                    .col(big_integer_null(ConsumptionRefund::StaffId))
                    .col(text_null(ConsumptionRefund::Reason))
                    .col(timestamp_with_time_zone(ConsumptionRefund::CreatedAt))
                    .foreign_key(&mut fk(
                        (ConsumptionRefund::Table, ConsumptionRefund::ConsumptionId),
                        (Consumption::Table, Consumption::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_consumption_refund_consumption",
            ConsumptionRefund::Table,
            vec![ConsumptionRefund::ConsumptionId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PointsLot::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PointsLot::Id))
                    .col(big_integer(PointsLot::MemberId))
                    // earn: points that can be spent until they expire; debt: the one negative
                    // lot that holds what a reversal could not recover, repaid by later earnings.
                    .col(string_len(PointsLot::Kind, 10))
                    .col(string_len(PointsLot::Source, 20))
                    .col(big_integer_null(PointsLot::RefId))
                    .col(big_integer(PointsLot::Amount))
                    .col(big_integer(PointsLot::Remaining))
                    .col(date(PointsLot::EarnedOn))
                    // Usable through the end of this business date; NULL for the debt lot.
                    .col(date_null(PointsLot::ExpiresOn))
                    .col(timestamp_with_time_zone_null(PointsLot::ExpiredAt))
                    .col(timestamp_with_time_zone(PointsLot::CreatedAt))
                    .foreign_key(&mut fk(
                        (PointsLot::Table, PointsLot::MemberId),
                        (Member::Table, Member::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_points_lot_member",
            PointsLot::Table,
            vec![
                PointsLot::MemberId.into_iden(),
                PointsLot::ExpiresOn.into_iden(),
            ],
            false,
        )
        .await?;
        // The nightly expiry scan asks for due lots not yet expired.
        index(
            manager,
            "ix_points_lot_expires",
            PointsLot::Table,
            vec![
                PointsLot::ExpiresOn.into_iden(),
                PointsLot::ExpiredAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PointsEntry::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PointsEntry::Id))
                    .col(big_integer(PointsEntry::MemberId))
                    // earn, spend, expire, reverse, adjust
                    .col(string_len(PointsEntry::Kind, 10))
                    .col(big_integer(PointsEntry::Delta))
                    .col(big_integer(PointsEntry::BalanceAfter))
                    .col(string_len(PointsEntry::Source, 20))
                    .col(big_integer_null(PointsEntry::RefId))
                    .col(string_len(PointsEntry::Reason, 200))
                    .col(big_integer_null(PointsEntry::StaffId))
                    .col(timestamp_with_time_zone(PointsEntry::CreatedAt))
                    .foreign_key(&mut fk(
                        (PointsEntry::Table, PointsEntry::MemberId),
                        (Member::Table, Member::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_points_entry_member",
            PointsEntry::Table,
            vec![
                PointsEntry::MemberId.into_iden(),
                PointsEntry::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PointsDraw::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PointsDraw::Id))
                    .col(big_integer(PointsDraw::EntryId))
                    .col(big_integer(PointsDraw::LotId))
                    .col(big_integer(PointsDraw::Amount))
                    .foreign_key(&mut fk(
                        (PointsDraw::Table, PointsDraw::EntryId),
                        (PointsEntry::Table, PointsEntry::Id),
                    ))
                    .foreign_key(&mut fk(
                        (PointsDraw::Table, PointsDraw::LotId),
                        (PointsLot::Table, PointsLot::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_points_draw_entry",
            PointsDraw::Table,
            vec![PointsDraw::EntryId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Checkin::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Checkin::Id))
                    .col(big_integer(Checkin::MemberId))
                    .col(date(Checkin::BusinessDate))
                    .col(big_integer(Checkin::Points))
                    .col(timestamp_with_time_zone(Checkin::CreatedAt))
                    .foreign_key(&mut fk(
                        (Checkin::Table, Checkin::MemberId),
                        (Member::Table, Member::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_checkin_member_date",
            Checkin::Table,
            vec![
                Checkin::MemberId.into_iden(),
                Checkin::BusinessDate.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReferralCredit::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ReferralCredit::Id))
                    .col(big_integer(ReferralCredit::ReferrerMemberId))
                    // One credit per referred customer, ever.
                    .col(big_integer(ReferralCredit::ReferredCustomerId).unique_key())
                    .col(big_integer(ReferralCredit::ConsumptionId))
                    .col(big_integer(ReferralCredit::Points))
                    // YYYY-MM of the business date, for the monthly cap.
                    .col(string_len(ReferralCredit::Month, 7))
                    .col(big_integer(ReferralCredit::LotId))
                    .col(timestamp_with_time_zone_null(ReferralCredit::ReversedAt))
                    .col(timestamp_with_time_zone(ReferralCredit::CreatedAt))
                    .foreign_key(&mut fk(
                        (ReferralCredit::Table, ReferralCredit::ReferrerMemberId),
                        (Member::Table, Member::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_referral_credit_month",
            ReferralCredit::Table,
            vec![
                ReferralCredit::ReferrerMemberId.into_iden(),
                ReferralCredit::Month.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reward::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Reward::Id))
                    .col(string_len(Reward::Name, 40))
                    // service, product, cash_voucher
                    .col(string_len(Reward::Kind, 20))
                    .col(text(Reward::Description))
                    .col(big_integer(Reward::PointsPrice))
                    .col(integer(Reward::StockTotal))
                    // Moves only by conditional UPDATE: never below zero.
                    .col(integer(Reward::StockLeft))
                    .col(integer_null(Reward::PerMemberLimit))
                    .col(big_integer_null(Reward::MinTierId))
                    .col(timestamp_with_time_zone_null(Reward::StartsAt))
                    .col(timestamp_with_time_zone_null(Reward::EndsAt))
                    .col(integer(Reward::VoucherValidDays))
                    .col(big_integer_null(Reward::FaceValueFen))
                    .col(big_integer_null(Reward::StoreId))
                    .col(boolean(Reward::Active).default(true))
                    .col(timestamp_with_time_zone(Reward::CreatedAt))
                    .col(timestamp_with_time_zone(Reward::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Voucher::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Voucher::Id))
                    .col(string_len(Voucher::Code, 16).unique_key())
                    .col(big_integer(Voucher::CustomerId))
                    .col(big_integer_null(Voucher::MemberId))
                    .col(big_integer_null(Voucher::RewardId))
                    // redemption, campaign, birthday, comeback
                    .col(string_len(Voucher::Source, 20))
                    .col(string_len(Voucher::Kind, 20))
                    .col(string_len(Voucher::Title, 40))
                    .col(big_integer_null(Voucher::FaceValueFen))
                    .col(big_integer(Voucher::PointsCost).default(0))
                    // The spend entry that paid for it, whose lots a cancellation refills.
                    .col(big_integer_null(Voucher::SpendEntryId))
                    .col(big_integer_null(Voucher::StoreId))
                    // unused, used, cancelled (expiry is read from expires_on)
                    .col(string_len(Voucher::Status, 20))
                    .col(timestamp_with_time_zone(Voucher::IssuedAt))
                    .col(date(Voucher::ExpiresOn))
                    .col(timestamp_with_time_zone_null(Voucher::UsedAt))
                    .col(big_integer_null(Voucher::UsedStoreId))
                    .col(big_integer_null(Voucher::UsedByStaffId))
                    .col(timestamp_with_time_zone_null(Voucher::CancelledAt))
                    .foreign_key(&mut fk(
                        (Voucher::Table, Voucher::CustomerId),
                        (Customer::Table, Customer::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_voucher_customer",
            Voucher::Table,
            vec![Voucher::CustomerId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_voucher_member_reward",
            Voucher::Table,
            vec![Voucher::MemberId.into_iden(), Voucher::RewardId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKey::Table)
                    .if_not_exists()
                    .col(big_pk_auto(IdempotencyKey::Id))
                    // Who and what the key belongs to, e.g. `member:12:redeem`.
                    .col(string_len(IdempotencyKey::Scope, 100))
                    .col(string_len(IdempotencyKey::Key, 100))
                    // SHA-256 of the request body: the same key with another body is refused.
                    .col(string_len(IdempotencyKey::Fingerprint, 64))
                    .col(integer(IdempotencyKey::StatusCode))
                    .col(text(IdempotencyKey::Response))
                    .col(timestamp_with_time_zone(IdempotencyKey::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_idempotency_scope_key",
            IdempotencyKey::Table,
            vec![
                IdempotencyKey::Scope.into_iden(),
                IdempotencyKey::Key.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OutboxMessage::Table)
                    .if_not_exists()
                    .col(big_pk_auto(OutboxMessage::Id))
                    // points_expiring, tier_changed, retention_reminder, ...
                    .col(string_len(OutboxMessage::Kind, 40))
                    .col(big_integer(OutboxMessage::CustomerId))
                    // What makes it unique within its kind, e.g. `member:5:2026-12-01`.
                    .col(string_len(OutboxMessage::Reference, 120))
                    // Variables the template will render.
                    .col(text(OutboxMessage::Payload))
                    .col(string_len(OutboxMessage::Status, 20))
                    .col(timestamp_with_time_zone(OutboxMessage::DueAt))
                    .col(timestamp_with_time_zone(OutboxMessage::CreatedAt))
                    .foreign_key(&mut fk(
                        (OutboxMessage::Table, OutboxMessage::CustomerId),
                        (Customer::Table, Customer::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_outbox_kind_reference",
            OutboxMessage::Table,
            vec![
                OutboxMessage::Kind.into_iden(),
                OutboxMessage::Reference.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_outbox_status_due",
            OutboxMessage::Table,
            vec![
                OutboxMessage::Status.into_iden(),
                OutboxMessage::DueAt.into_iden(),
            ],
            false,
        )
        .await?;

        let now = chrono_now_sql(manager.get_database_backend());
        for (rank, (code, name, threshold, discount, multiplier, lead, benefits)) in
            DEFAULT_TIERS.iter().enumerate()
        {
            let insert = Query::insert()
                .into_table(Tier::Table)
                .columns([
                    Tier::Code,
                    Tier::Name,
                    Tier::Rank,
                    Tier::ThresholdFen,
                    Tier::DiscountPct,
                    Tier::MultiplierPct,
                    Tier::BookingLeadHours,
                    Tier::Benefits,
                    Tier::UpdatedAt,
                ])
                .values_panic([
                    (*code).into(),
                    (*name).into(),
                    (rank as i32).into(),
                    (*threshold).into(),
                    (*discount).into(),
                    (*multiplier).into(),
                    (*lead).into(),
                    (*benefits).into(),
                    Expr::cust(now),
                ])
                .to_owned();
            manager.exec_stmt(insert).await?;
        }

        // The ledger's history is append-only, like the audit log: corrections are new entries.
        crate::shared::append_only(manager, "points_entry").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::shared::drop_append_only(manager, "points_entry").await?;
        for table in [
            OutboxMessage::Table.into_iden(),
            IdempotencyKey::Table.into_iden(),
            Voucher::Table.into_iden(),
            Reward::Table.into_iden(),
            ReferralCredit::Table.into_iden(),
            Checkin::Table.into_iden(),
            PointsDraw::Table.into_iden(),
            PointsEntry::Table.into_iden(),
            PointsLot::Table.into_iden(),
            ConsumptionRefund::Table.into_iden(),
            Consumption::Table.into_iden(),
            Member::Table.into_iden(),
            Tier::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [
            Customer::VisitCount,
            Customer::LifetimeSpendFen,
            Customer::FirstVisitAt,
            Customer::LastVisitAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Customer::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

fn chrono_now_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "CURRENT_TIMESTAMP",
        _ => "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')",
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
    Id,
    VisitCount,
    LifetimeSpendFen,
    FirstVisitAt,
    LastVisitAt,
}

#[derive(DeriveIden)]
enum Tier {
    Table,
    Id,
    Code,
    Name,
    Rank,
    ThresholdFen,
    DiscountPct,
    MultiplierPct,
    BookingLeadHours,
    Benefits,
    UpdatedAt,
}

// `member_no` is the column's name; the lint only sees the enum's.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
    CustomerId,
    MemberNo,
    TierId,
    TierValidUntil,
    TierSource,
    PrevTierId,
    PrevTierValidUntil,
    UpgradeConsumptionId,
    ManualTierId,
    ManualTierUntil,
    PointsBalance,
    JoinedVia,
    JoinedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Consumption {
    Table,
    Id,
    CustomerId,
    StoreId,
    OrderNo,
    Items,
    PaidFen,
    RefundedFen,
    OccurredAt,
    BusinessDate,
    StaffId,
    MemberId,
    PointsEarned,
    Bonus,
    LotId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConsumptionRefund {
    Table,
    Id,
    ConsumptionId,
    AmountFen,
    PointsReversed,
    StaffId,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PointsLot {
    Table,
    Id,
    MemberId,
    Kind,
    Source,
    RefId,
    Amount,
    Remaining,
    EarnedOn,
    ExpiresOn,
    ExpiredAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PointsEntry {
    Table,
    Id,
    MemberId,
    Kind,
    Delta,
    BalanceAfter,
    Source,
    RefId,
    Reason,
    StaffId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PointsDraw {
    Table,
    Id,
    EntryId,
    LotId,
    Amount,
}

#[derive(DeriveIden)]
enum Checkin {
    Table,
    Id,
    MemberId,
    BusinessDate,
    Points,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ReferralCredit {
    Table,
    Id,
    ReferrerMemberId,
    ReferredCustomerId,
    ConsumptionId,
    Points,
    Month,
    LotId,
    ReversedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Reward {
    Table,
    Id,
    Name,
    Kind,
    Description,
    PointsPrice,
    StockTotal,
    StockLeft,
    PerMemberLimit,
    MinTierId,
    StartsAt,
    EndsAt,
    VoucherValidDays,
    FaceValueFen,
    StoreId,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Voucher {
    Table,
    Id,
    Code,
    CustomerId,
    MemberId,
    RewardId,
    Source,
    Kind,
    Title,
    FaceValueFen,
    PointsCost,
    SpendEntryId,
    StoreId,
    Status,
    IssuedAt,
    ExpiresOn,
    UsedAt,
    UsedStoreId,
    UsedByStaffId,
    CancelledAt,
}

#[derive(DeriveIden)]
enum IdempotencyKey {
    Table,
    Id,
    Scope,
    Key,
    Fingerprint,
    StatusCode,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboxMessage {
    Table,
    Id,
    Kind,
    CustomerId,
    Reference,
    Payload,
    Status,
    DueAt,
    CreatedAt,
}
