//! Schema migrations. Every migration must run on both PostgreSQL and SQLite, so they are written
//! with SeaORM's backend-neutral schema helpers rather than raw SQL.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_store_and_setting;
mod m20261122_000002_create_member_identity;
mod m20261123_000003_create_staff_and_customer_records;
mod m20261123_000004_create_loyalty;
mod m20261124_000005_create_booking;
mod m20261124_000006_create_message_template;
mod m20261124_000007_outbox_delivery;
mod m20261124_000008_marketing_guard_rails;
mod m20261124_000009_create_campaign;
mod m20261125_000010_second_channel_and_delivery;
mod m20261125_000011_create_privacy_request;
mod shared;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_store_and_setting::Migration),
            Box::new(m20261122_000002_create_member_identity::Migration),
            Box::new(m20261123_000003_create_staff_and_customer_records::Migration),
            Box::new(m20261123_000004_create_loyalty::Migration),
            Box::new(m20261124_000005_create_booking::Migration),
            Box::new(m20261124_000006_create_message_template::Migration),
            Box::new(m20261124_000007_outbox_delivery::Migration),
            Box::new(m20261124_000008_marketing_guard_rails::Migration),
            Box::new(m20261124_000009_create_campaign::Migration),
            Box::new(m20261125_000010_second_channel_and_delivery::Migration),
            Box::new(m20261125_000011_create_privacy_request::Migration),
        ]
    }
}
