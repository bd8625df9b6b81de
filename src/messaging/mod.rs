//! Messaging (DESIGN section 7): what each kind of message says and which WeChat template
//! carries it, the outbox sender that delivers queued messages (with the marketing guard rails),
//! the daily birthday and recall automations, and campaigns, which queue through the same
//! outbox and so share the sender's guard rails.

pub mod automations;
pub mod campaigns;
pub mod delivery;
pub mod sender;
pub mod templates;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    templates::routes(cfg);
    automations::routes(cfg);
    campaigns::routes(cfg);
}
