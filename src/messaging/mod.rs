//! Messaging (DESIGN section 7): what each kind of message says and which WeChat template
//! carries it, and the outbox sender that delivers queued messages. Campaigns build on both.

pub mod sender;
pub mod templates;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    templates::routes(cfg);
}
