// Integration tests: one binary, one module per area. `unwrap`/`expect` are how tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod customers;
mod database;
mod demo;
mod errors;
mod health;
mod helpers;
mod jobs;
mod loyalty_points;
mod observability;
mod rewards;
mod shutdown;
mod staff;
mod wechat_member;
mod wechat_token;
