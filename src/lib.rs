//! memberhub: the member and private-domain system of a medical-aesthetics clinic chain.
//! One module per area; see `../shared/DESIGN.md` for the map.

pub mod app_settings;
pub mod audit;
pub mod auth;
pub mod booking;
pub mod cache;
pub mod clock;
pub mod config;
pub mod customers;
pub mod db;
pub mod demo;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod loyalty;
pub mod members;
pub mod messaging;
pub mod outbox;
pub mod paging;
pub mod privacy;
pub mod staff;
pub mod startup;
pub mod state;
pub mod static_mp;
pub mod telemetry;
pub mod wechat;
