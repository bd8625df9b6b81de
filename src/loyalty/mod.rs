//! The loyalty core (DESIGN sections 3 and 4): membership and tiers, the points ledger,
//! consumption and refunds, check-in and referral rewards, rewards and vouchers, the nightly
//! jobs, and the member's card.

pub mod calendar;
pub mod card;
pub mod consumption;
pub mod jobs;
pub mod ledger;
pub mod membership;
pub mod points;
pub mod rewards;
pub mod tiers;

use actix_web::http::StatusCode;

use crate::error::ApiError;
use ledger::LedgerError;

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Insufficient => ApiError::conflict("insufficient_points", "积分不足"),
            LedgerError::NoMember(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_member", "会员不存在")
            }
            LedgerError::Db(e) => e.into(),
        }
    }
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(membership::join)
        .service(membership::me)
        .service(membership::update_profile)
        .service(membership::enrol_at_desk)
        .service(membership::staff_member_detail)
        .service(membership::set_manual_tier)
        .service(tiers::list_tiers)
        .service(tiers::replace_tiers)
        .configure(consumption::routes)
        .configure(points::routes)
        .configure(rewards::routes)
        .configure(jobs::routes);
}
