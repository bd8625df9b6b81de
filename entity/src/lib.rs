//! SeaORM entities, one file per table. The schema itself lives in `migration/`.

pub mod audit_log;
pub mod consent_record;
pub mod customer;
pub mod customer_note;
pub mod customer_tag;
pub mod member_session;
pub mod prelude;
pub mod setting;
pub mod staff;
pub mod staff_session;
pub mod store;
pub mod subscription_accept;
pub mod subscription_quota;
pub mod wechat_account;
pub mod wechat_push_event;
