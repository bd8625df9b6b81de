//! Logging: one span per request carrying its request id, so every line a request logs can be
//! found together; pretty lines for a person at a terminal, JSON lines for a log pipeline.

use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .map_err(|e| anyhow::anyhow!("log.level {:?}: {e}", settings.level))?;
    let registry = tracing_subscriber::registry().with(filter);
    // Colour only for a person at a terminal; files and log pipelines get plain text.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match settings.format {
        LogFormat::Pretty => registry
            .with(fmt::layer().with_target(false).with_ansi(ansi))
            .try_init()?,
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()?,
    }
    Ok(())
}

/// The root span of a request: its id, method, route pattern (never the raw path, which can
/// hold ids and tokens) and, at the end, its status.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| "-".into());
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            route = %route,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(res) => (res.status(), res.response().error()),
            Err(err) => (err.as_response_error().status_code(), Some(err)),
        };
        span.record("status", status.as_u16());
        let _entered = span.enter();
        match error {
            // Debug of an ApiError carries the whole cause chain, which only the log may see.
            Some(err) if status.is_server_error() => {
                tracing::error!(error = ?err.as_response_error(), "request failed")
            }
            Some(err) => tracing::info!(error = %err.as_response_error(), "request rejected"),
            None => tracing::debug!("request done"),
        }
    }
}
