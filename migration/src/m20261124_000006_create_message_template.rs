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
                    .table(MessageTemplate::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MessageTemplate::Id))
                    // booking_confirmed, points_expiring, birthday... (messaging::templates)
                    .col(string_len(MessageTemplate::Kind, 40))
                    // subscribe (mini-program subscribe message), oa_template (official account)
                    .col(string_len(MessageTemplate::Channel, 20))
                    // WeChat's id of the template; empty means "not configured yet".
                    .col(string_len(MessageTemplate::TemplateId, 128))
                    // The mini-program page the message opens, with optional {variables}.
                    .col(string_len_null(MessageTemplate::Page, 256))
                    // JSON object: keyword id (thing1, time2...) -> expression.
                    .col(text(MessageTemplate::Keywords))
                    .col(boolean(MessageTemplate::Active))
                    .col(big_integer_null(MessageTemplate::UpdatedByStaffId))
                    .col(timestamp_with_time_zone(MessageTemplate::CreatedAt))
                    .col(timestamp_with_time_zone(MessageTemplate::UpdatedAt))
                    .foreign_key(&mut fk(
                        (MessageTemplate::Table, MessageTemplate::UpdatedByStaffId),
                        (Staff::Table, Staff::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One template per kind and channel: the sender looks it up by the pair.
        index(
            manager,
            "ux_message_template_kind_channel",
            MessageTemplate::Table,
            vec![
                MessageTemplate::Kind.into_iden(),
                MessageTemplate::Channel.into_iden(),
            ],
            true,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageTemplate::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Staff {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MessageTemplate {
    Table,
    Id,
    Kind,
    Channel,
    TemplateId,
    Page,
    Keywords,
    Active,
    UpdatedByStaffId,
    CreatedAt,
    UpdatedAt,
}
