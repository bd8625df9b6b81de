//! The second channel and delivery reports (DESIGN sections 6 and 7):
//! - `oa_follower`: who follows the clinic's 服务号, by the official account's own openid, with
//!   the unionid that links them to a mini-program member. Fed by the account's subscribe and
//!   unsubscribe pushes (and a 43004 answer, which says the follower left).
//! - `outbox_message.channel`: the channel a message went out on; `delivery` and
//!   `delivered_at`: what WeChat's `subscribe_msg_sent_event` later said of a sent message,
//!   found by `msgid` (indexed for that).
//! - `staff.wechat_account_id`: the mini-program account a member of staff bound as their own,
//!   so a campaign's test message reaches their WeChat.
//!
//! Columns added to existing tables are nullable and added one per statement, which is what
//! SQLite's ALTER TABLE allows.

use sea_orm_migration::{prelude::*, schema::*};

use crate::shared::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OaFollower::Table)
                    .if_not_exists()
                    .col(big_pk_auto(OaFollower::Id))
                    .col(string_len_uniq(OaFollower::OaOpenid, 64))
                    .col(string_len_null(OaFollower::Unionid, 64))
                    .col(boolean(OaFollower::Following))
                    .col(timestamp_with_time_zone(OaFollower::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_oa_follower_unionid",
            OaFollower::Table,
            vec![OaFollower::Unionid.into_iden()],
            false,
        )
        .await?;
        for column in [
            string_len_null(OutboxMessage::Channel, 20),
            string_len_null(OutboxMessage::Delivery, 20),
            timestamp_with_time_zone_null(OutboxMessage::DeliveredAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxMessage::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        index(
            manager,
            "ix_outbox_msgid",
            OutboxMessage::Table,
            vec![OutboxMessage::Msgid.into_iden()],
            false,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Staff::Table)
                    .add_column(big_integer_null(Staff::WechatAccountId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Staff::Table)
                    .drop_column(Staff::WechatAccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_outbox_msgid")
                    .table(OutboxMessage::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            OutboxMessage::DeliveredAt,
            OutboxMessage::Delivery,
            OutboxMessage::Channel,
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
        manager
            .drop_table(Table::drop().table(OaFollower::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OaFollower {
    Table,
    Id,
    OaOpenid,
    Unionid,
    Following,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OutboxMessage {
    Table,
    Channel,
    Delivery,
    DeliveredAt,
    Msgid,
}

#[derive(DeriveIden)]
enum Staff {
    Table,
    WechatAccountId,
}
