use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Customer::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Customer::Id))
                    .col(string_len_null(Customer::Name, 50))
                    // AES-256-GCM ciphertext (nonce | ciphertext), base64.
                    .col(text_null(Customer::PhoneEnc))
                    // HMAC-SHA256 of the normalised phone: the only way to look a phone up.
                    .col(string_len_null(Customer::PhoneHash, 64).unique_key())
                    .col(string_len_null(Customer::PhoneMasked, 20))
                    .col(string_len_null(Customer::Gender, 10))
                    .col(date_null(Customer::Birthday))
                    .col(big_integer_null(Customer::HomeStoreId))
                    .col(string_len(Customer::Source, 30).default("wechat"))
                    .col(timestamp_with_time_zone(Customer::CreatedAt))
                    .col(timestamp_with_time_zone(Customer::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Customer::Table, Customer::HomeStoreId)
                            .to(Store::Table, Store::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WechatAccount::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WechatAccount::Id))
                    .col(string_len(WechatAccount::Appid, 32))
                    .col(string_len(WechatAccount::Openid, 64))
                    .col(string_len_null(WechatAccount::Unionid, 64))
                    .col(text_null(WechatAccount::SessionKeyEnc))
                    // One phone (customer), one WeChat account.
                    .col(big_integer_null(WechatAccount::CustomerId).unique_key())
                    .col(string_len(WechatAccount::ReferralCode, 16).unique_key())
                    .col(string_len_null(WechatAccount::ConsentPolicyVersion, 20))
                    .col(boolean(WechatAccount::ConsentMarketing).default(false))
                    .col(boolean(WechatAccount::ConsentSensitiveHealth).default(false))
                    .col(timestamp_with_time_zone_null(WechatAccount::ConsentAt))
                    .col(timestamp_with_time_zone(WechatAccount::CreatedAt))
                    .col(timestamp_with_time_zone(WechatAccount::LastLoginAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WechatAccount::Table, WechatAccount::CustomerId)
                            .to(Customer::Table, Customer::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_wechat_account_app_openid")
                    .table(WechatAccount::Table)
                    .col(WechatAccount::Appid)
                    .col(WechatAccount::Openid)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // Every consent a member gave, append-only: the evidence PIPL asks for.
        manager
            .create_table(
                Table::create()
                    .table(ConsentRecord::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ConsentRecord::Id))
                    .col(big_integer(ConsentRecord::WechatAccountId))
                    .col(string_len(ConsentRecord::PolicyVersion, 20))
                    .col(boolean(ConsentRecord::Marketing))
                    .col(boolean(ConsentRecord::SensitiveHealth))
                    .col(timestamp_with_time_zone(ConsentRecord::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ConsentRecord::Table, ConsentRecord::WechatAccountId)
                            .to(WechatAccount::Table, WechatAccount::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberSession::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MemberSession::Id))
                    .col(big_integer(MemberSession::WechatAccountId))
                    // SHA-256 of the bearer token; the token itself is never stored.
                    .col(string_len(MemberSession::TokenHash, 64).unique_key())
                    .col(timestamp_with_time_zone(MemberSession::ExpiresAt))
                    .col(timestamp_with_time_zone_null(MemberSession::RevokedAt))
                    .col(timestamp_with_time_zone(MemberSession::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MemberSession::Table, MemberSession::WechatAccountId)
                            .to(WechatAccount::Table, WechatAccount::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SubscriptionQuota::Table)
                    .if_not_exists()
                    .col(big_pk_auto(SubscriptionQuota::Id))
                    .col(big_integer(SubscriptionQuota::WechatAccountId))
                    .col(string_len(SubscriptionQuota::TemplateId, 64))
                    .col(integer(SubscriptionQuota::Remaining).default(0))
                    .col(string_len(SubscriptionQuota::LastStatus, 20))
                    .col(timestamp_with_time_zone(SubscriptionQuota::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SubscriptionQuota::Table, SubscriptionQuota::WechatAccountId)
                            .to(WechatAccount::Table, WechatAccount::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_subscription_quota_account_template")
                    .table(SubscriptionQuota::Table)
                    .col(SubscriptionQuota::WechatAccountId)
                    .col(SubscriptionQuota::TemplateId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // The same popup is reported twice: by the mini-program and by WeChat's push. Each
        // accept is kept here until its twin from the other source pairs with it, so one tap
        // adds one send, whichever report arrives first.
        manager
            .create_table(
                Table::create()
                    .table(SubscriptionAccept::Table)
                    .if_not_exists()
                    .col(big_pk_auto(SubscriptionAccept::Id))
                    .col(big_integer(SubscriptionAccept::WechatAccountId))
                    .col(string_len(SubscriptionAccept::TemplateId, 64))
                    .col(string_len(SubscriptionAccept::Source, 10))
                    .col(boolean(SubscriptionAccept::Paired).default(false))
                    .col(timestamp_with_time_zone(SubscriptionAccept::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WechatPushEvent::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WechatPushEvent::Id))
                    // FromUserName + CreateTime + Event: WeChat retries keep all three.
                    .col(string_len(WechatPushEvent::DedupKey, 200).unique_key())
                    .col(string_len(WechatPushEvent::Event, 60))
                    .col(string_len(WechatPushEvent::FromUser, 64))
                    .col(json(WechatPushEvent::Payload))
                    .col(timestamp_with_time_zone(WechatPushEvent::ReceivedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WechatPushEvent::Table.into_iden(),
            SubscriptionAccept::Table.into_iden(),
            SubscriptionQuota::Table.into_iden(),
            MemberSession::Table.into_iden(),
            ConsentRecord::Table.into_iden(),
            WechatAccount::Table.into_iden(),
            Customer::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
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
    Id,
    Name,
    PhoneEnc,
    PhoneHash,
    PhoneMasked,
    Gender,
    Birthday,
    HomeStoreId,
    Source,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WechatAccount {
    Table,
    Id,
    Appid,
    Openid,
    Unionid,
    SessionKeyEnc,
    CustomerId,
    ReferralCode,
    ConsentPolicyVersion,
    ConsentMarketing,
    ConsentSensitiveHealth,
    ConsentAt,
    CreatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum ConsentRecord {
    Table,
    Id,
    WechatAccountId,
    PolicyVersion,
    Marketing,
    SensitiveHealth,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MemberSession {
    Table,
    Id,
    WechatAccountId,
    TokenHash,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SubscriptionQuota {
    Table,
    Id,
    WechatAccountId,
    TemplateId,
    Remaining,
    LastStatus,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SubscriptionAccept {
    Table,
    Id,
    WechatAccountId,
    TemplateId,
    Source,
    Paired,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WechatPushEvent {
    Table,
    Id,
    DedupKey,
    Event,
    FromUser,
    Payload,
    ReceivedAt,
}
