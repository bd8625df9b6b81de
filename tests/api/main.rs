// Integration tests: one binary, one module per area. `unwrap`/`expect` are how tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod booking;
mod booking_jobs;
mod booking_staff;
mod cache;
mod customers;
mod database;
mod demo;
mod errors;
mod health;
mod helpers;
mod jobs;
mod loyalty_points;
mod member_rights;
mod messaging_automations;
mod messaging_campaigns;
mod messaging_channels;
mod messaging_sender;
mod messaging_templates;
mod observability;
mod rewards;
mod shutdown;
mod staff;
mod wechat_member;
mod wechat_token;
