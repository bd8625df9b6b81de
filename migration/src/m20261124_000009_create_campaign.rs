//! Campaigns (DESIGN section 7): staff pick a kind, an audience and optionally a voucher; a
//! started campaign writes one outbox row per recipient, tagged with `campaign_id`, so its
//! progress and conversion are read off the outbox. The column is nullable so that SQLite can
//! add it to the existing table; the index answers "this campaign's rows by status".

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
                    .table(Campaign::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Campaign::Id))
                    // Null: chain-wide (admins only).
                    .col(big_integer_null(Campaign::StoreId))
                    // birthday, recall, custom (outbox::kind::MARKETING)
                    .col(string_len(Campaign::Kind, 40))
                    .col(string_len(Campaign::Name, 100))
                    // JSON: the audience filters (messaging::campaigns::Audience).
                    .col(text(Campaign::Audience))
                    // JSON: the voucher given to those actually sent to, if any.
                    .col(text_null(Campaign::Voucher))
                    .col(timestamp_with_time_zone_null(Campaign::ScheduledAt))
                    // draft, scheduled, running, paused, completed, cancelled
                    .col(string_len(Campaign::Status, 20))
                    .col(big_integer(Campaign::CreatedBy))
                    .col(timestamp_with_time_zone(Campaign::CreatedAt))
                    .col(timestamp_with_time_zone(Campaign::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Campaign::StartedAt))
                    .col(timestamp_with_time_zone_null(Campaign::CompletedAt))
                    .foreign_key(&mut fk(
                        (Campaign::Table, Campaign::StoreId),
                        (Store::Table, Store::Id),
                    ))
                    .foreign_key(&mut fk(
                        (Campaign::Table, Campaign::CreatedBy),
                        (Staff::Table, Staff::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_campaign_store_created",
            Campaign::Table,
            vec![
                Campaign::StoreId.into_iden(),
                Campaign::CreatedAt.into_iden(),
            ],
            false,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxMessage::Table)
                    .add_column(big_integer_null(OutboxMessage::CampaignId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_outbox_campaign_status",
            OutboxMessage::Table,
            vec![
                OutboxMessage::CampaignId.into_iden(),
                OutboxMessage::Status.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_outbox_campaign_status")
                    .table(OutboxMessage::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxMessage::Table)
                    .drop_column(OutboxMessage::CampaignId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Campaign::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Campaign {
    Table,
    Id,
    StoreId,
    Kind,
    Name,
    Audience,
    Voucher,
    ScheduledAt,
    Status,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Store {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Staff {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OutboxMessage {
    Table,
    CampaignId,
    Status,
}
