//! Members' requests under PIPL (DESIGN section 8): a copy of their data (answered at once and
//! recorded) and the deletion of their account (recorded, then carried out by an admin: personal
//! fields anonymised, financial records kept). One open deletion request per WeChat account, by
//! a partial unique index, however often the member taps.

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
                    .table(PrivacyRequest::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PrivacyRequest::Id))
                    .col(big_integer(PrivacyRequest::WechatAccountId))
                    .col(big_integer_null(PrivacyRequest::CustomerId))
                    // export, deletion
                    .col(string_len(PrivacyRequest::Kind, 20))
                    // received, completed, rejected
                    .col(string_len(PrivacyRequest::Status, 20))
                    .col(timestamp_with_time_zone(PrivacyRequest::RequestedAt))
                    .col(timestamp_with_time_zone_null(PrivacyRequest::HandledAt))
                    .col(big_integer_null(PrivacyRequest::HandledBy))
                    .col(string_len_null(PrivacyRequest::Note, 200))
                    .foreign_key(&mut fk(
                        (PrivacyRequest::Table, PrivacyRequest::WechatAccountId),
                        (WechatAccount::Table, WechatAccount::Id),
                    ))
                    .foreign_key(&mut fk(
                        (PrivacyRequest::Table, PrivacyRequest::HandledBy),
                        (Staff::Table, Staff::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_privacy_request_status",
            PrivacyRequest::Table,
            vec![
                PrivacyRequest::Status.into_iden(),
                PrivacyRequest::RequestedAt.into_iden(),
            ],
            false,
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_privacy_request_open ON privacy_request \
                 (wechat_account_id, kind) WHERE status = 'received'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PrivacyRequest::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PrivacyRequest {
    Table,
    Id,
    WechatAccountId,
    CustomerId,
    Kind,
    Status,
    RequestedAt,
    HandledAt,
    HandledBy,
    Note,
}

#[derive(DeriveIden)]
enum WechatAccount {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Staff {
    Table,
    Id,
}
