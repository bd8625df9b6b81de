//! The marketing frequency cap (DESIGN section 7): when the customer was last sent a marketing
//! message. The sender claims the customer's slot with one conditional UPDATE on this column,
//! so two senders (or a campaign and an automation) can never both take it. Nullable, so that
//! SQLite can add it to the existing table. The recall automation asks "was this customer
//! recalled in the last 90 days", which the index on (customer, kind, created) answers.

use sea_orm_migration::{prelude::*, schema::*};

use crate::shared::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .add_column(timestamp_with_time_zone_null(Customer::LastMarketingAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_outbox_customer_kind_created",
            OutboxMessage::Table,
            vec![
                OutboxMessage::CustomerId.into_iden(),
                OutboxMessage::Kind.into_iden(),
                OutboxMessage::CreatedAt.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_outbox_customer_kind_created")
                    .table(OutboxMessage::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .drop_column(Customer::LastMarketingAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    LastMarketingAt,
}

#[derive(DeriveIden)]
enum OutboxMessage {
    Table,
    CustomerId,
    Kind,
    CreatedAt,
}
