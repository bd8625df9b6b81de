//! What the outbox sender records about each message: who claimed it and when (so a crashed
//! worker's rows can be taken over after a lease), how many attempts were made, and the outcome
//! (WeChat's msgid, or why it was skipped, failed or deferred). One column per ALTER, each
//! nullable or with a default, so that SQLite can add them to the existing table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            integer(OutboxMessage::Attempts).default(0).to_owned(),
            timestamp_with_time_zone_null(OutboxMessage::ClaimedAt),
            string_len_null(OutboxMessage::ClaimedBy, 64),
            timestamp_with_time_zone_null(OutboxMessage::SentAt),
            string_len_null(OutboxMessage::Msgid, 64),
            // no_quota, no_account, no_template, "47003 thing1: ..." and the like.
            string_len_null(OutboxMessage::Reason, 200),
            string_len_null(OutboxMessage::TemplateId, 128),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxMessage::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            OutboxMessage::TemplateId,
            OutboxMessage::Reason,
            OutboxMessage::Msgid,
            OutboxMessage::SentAt,
            OutboxMessage::ClaimedBy,
            OutboxMessage::ClaimedAt,
            OutboxMessage::Attempts,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxMessage::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OutboxMessage {
    Table,
    Attempts,
    ClaimedAt,
    ClaimedBy,
    SentAt,
    Msgid,
    Reason,
    TemplateId,
}
