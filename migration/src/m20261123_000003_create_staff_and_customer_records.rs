use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Staff::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Staff::Id))
                    // Stored lower-case, so "Alice" and "alice" are one account.
                    .col(string_len(Staff::Username, 50).unique_key())
                    .col(string_len(Staff::DisplayName, 50))
                    .col(string_len(Staff::Role, 20))
                    // NULL for admins: the whole chain.
                    .col(big_integer_null(Staff::StoreId))
                    // argon2id PHC string.
                    .col(text(Staff::PasswordHash))
                    .col(boolean(Staff::Active).default(true))
                    .col(timestamp_with_time_zone(Staff::PasswordChangedAt))
                    .col(timestamp_with_time_zone(Staff::CreatedAt))
                    .col(timestamp_with_time_zone(Staff::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Staff::Table, Staff::StoreId)
                            .to(Store::Table, Store::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_staff_store")
                    .table(Staff::Table)
                    .col(Staff::StoreId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StaffSession::Table)
                    .if_not_exists()
                    .col(big_pk_auto(StaffSession::Id))
                    .col(big_integer(StaffSession::StaffId))
                    // SHA-256 of the cookie or bearer token; the token itself is never stored.
                    .col(string_len(StaffSession::TokenHash, 64).unique_key())
                    // SHA-256 of the CSRF token (cookie sessions only).
                    .col(string_len_null(StaffSession::CsrfHash, 64))
                    .col(string_len(StaffSession::Kind, 10))
                    .col(string_len_null(StaffSession::Ip, 64))
                    .col(timestamp_with_time_zone(StaffSession::CreatedAt))
                    .col(timestamp_with_time_zone(StaffSession::LastSeenAt))
                    .col(timestamp_with_time_zone(StaffSession::ExpiresAt))
                    .col(timestamp_with_time_zone_null(StaffSession::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(StaffSession::Table, StaffSession::StaffId)
                            .to(Staff::Table, Staff::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_staff_session_staff")
                    .table(StaffSession::Table)
                    .col(StaffSession::StaffId)
                    .to_owned(),
            )
            .await?;

        // SQLite takes one column per ALTER TABLE. The references are checked by the code
        // (SQLite cannot add a foreign key to an existing table).
        for column in [
            big_integer_null(Customer::ConsultantId),
            big_integer_null(Customer::ReferrerId),
            big_integer_null(Customer::CreatedByStaffId),
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
        for (name, col) in [
            ("ix_customer_home_store", Customer::HomeStoreId),
            ("ix_customer_consultant", Customer::ConsultantId),
            ("ix_customer_name", Customer::Name),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Customer::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CustomerTag::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CustomerTag::Id))
                    .col(big_integer(CustomerTag::CustomerId))
                    .col(string_len(CustomerTag::Tag, 20))
                    .col(timestamp_with_time_zone(CustomerTag::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerTag::Table, CustomerTag::CustomerId)
                            .to(Customer::Table, Customer::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_customer_tag")
                    .table(CustomerTag::Table)
                    .col(CustomerTag::CustomerId)
                    .col(CustomerTag::Tag)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_customer_tag_tag")
                    .table(CustomerTag::Table)
                    .col(CustomerTag::Tag)
                    .to_owned(),
            )
            .await?;

        // Memory notes ("怕疼", "喜欢粉色玫瑰"): who wrote what, when.
        manager
            .create_table(
                Table::create()
                    .table(CustomerNote::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CustomerNote::Id))
                    .col(big_integer(CustomerNote::CustomerId))
                    .col(big_integer(CustomerNote::StaffId))
                    .col(text(CustomerNote::Body))
                    .col(timestamp_with_time_zone(CustomerNote::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerNote::Table, CustomerNote::CustomerId)
                            .to(Customer::Table, Customer::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerNote::Table, CustomerNote::StaffId)
                            .to(Staff::Table, Staff::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_customer_note_customer")
                    .table(CustomerNote::Table)
                    .col(CustomerNote::CustomerId)
                    .to_owned(),
            )
            .await?;

        // Who saw or changed what (PIPL). No foreign key to staff on purpose: the trail must
        // outlive whatever it mentions. Holds ids and field names, never personal values.
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(big_integer_null(AuditLog::StaffId))
                    .col(string_len_null(AuditLog::StaffUsername, 50))
                    .col(string_len(AuditLog::Action, 50))
                    .col(string_len_null(AuditLog::TargetType, 30))
                    .col(big_integer_null(AuditLog::TargetId))
                    .col(big_integer_null(AuditLog::StoreId))
                    .col(string_len_null(AuditLog::Ip, 64))
                    .col(json_null(AuditLog::Detail))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ix_audit_log_staff", vec![AuditLog::StaffId]),
            (
                "ix_audit_log_target",
                vec![AuditLog::TargetType, AuditLog::TargetId],
            ),
            ("ix_audit_log_action", vec![AuditLog::Action]),
            ("ix_audit_log_at", vec![AuditLog::At]),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditLog::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        // Append-only is enforced by the database, not just by the absence of an endpoint.
        crate::shared::append_only(manager, "audit_log").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::shared::drop_append_only(manager, "audit_log").await?;
        for table in [
            AuditLog::Table.into_iden(),
            CustomerNote::Table.into_iden(),
            CustomerTag::Table.into_iden(),
            StaffSession::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for name in [
            "ix_customer_home_store",
            "ix_customer_consultant",
            "ix_customer_name",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Customer::Table).to_owned())
                .await?;
        }
        for column in [
            Customer::ConsultantId,
            Customer::ReferrerId,
            Customer::CreatedByStaffId,
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
        manager
            .drop_table(Table::drop().table(Staff::Table).to_owned())
            .await
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
    HomeStoreId,
    ConsultantId,
    ReferrerId,
    CreatedByStaffId,
}

#[derive(DeriveIden)]
enum Staff {
    Table,
    Id,
    Username,
    DisplayName,
    Role,
    StoreId,
    PasswordHash,
    Active,
    PasswordChangedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StaffSession {
    Table,
    Id,
    StaffId,
    TokenHash,
    CsrfHash,
    Kind,
    Ip,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum CustomerTag {
    Table,
    Id,
    CustomerId,
    Tag,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CustomerNote {
    Table,
    Id,
    CustomerId,
    StaffId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    StaffId,
    StaffUsername,
    Action,
    TargetType,
    TargetId,
    StoreId,
    Ip,
    Detail,
}
