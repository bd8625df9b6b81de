//! Messaging (DESIGN section 7): what each kind of message says and which WeChat template
//! carries it. Campaigns and the outbox sender build on the templates kept here.

pub mod templates;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    templates::routes(cfg);
}
