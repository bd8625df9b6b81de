//! The one error type of the HTTP API. Every failure reaches clients as
//! `{"error": {"code": "...", "message": "..."}}`: `code` is a stable snake_case identifier that
//! clients switch on, `message` is Chinese text fit to show a member. Internal detail is logged,
//! never returned.

use std::borrow::Cow;
use std::fmt;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};

/// Boxed so that `Result<T, ApiError>` stays one pointer wide on the happy path.
pub struct ApiError(Box<Inner>);

struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    /// Extra machine-readable fields next to `code` (e.g. `field`, `opens_at`).
    details: Map<String, Value>,
    /// The cause of a 500, for the log only.
    source: Option<anyhow::Error>,
}

/// The wire shape, also used by the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable identifier, e.g. `invalid_json`, `not_found`, `slot_full`.
    pub code: String,
    /// Chinese text fit to show a member.
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            code: code.into(),
            message: message.into(),
            details: Map::new(),
            source: None,
        }))
    }

    /// Adds a machine-readable field to the error object.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.details.insert(key.to_string(), value.into());
        self
    }

    /// 400 for input that parsed but is not acceptable; names the offending field.
    pub fn validation(field: &str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", message).with_detail("field", field)
    }

    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "请先登录")
    }

    pub fn forbidden(code: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, "没有权限执行此操作")
    }

    pub fn not_found(what: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what}不存在"))
    }

    pub fn conflict(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "操作过于频繁，请稍后再试",
        )
        .with_detail("retry_after_secs", retry_after_secs)
    }

    pub fn unavailable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500 with an opaque body; `err` goes to the log.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "服务器开小差了，请稍后再试",
        );
        e.0.source = Some(err.into());
        e
    }

    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// `code: message (details)`, for the command line, which has no envelope; a 500 keeps
    /// its cause, since the operator at the shell is the one who must see it.
    pub fn describe(&self) -> String {
        let mut out = format!("{}: {}", self.0.code, self.0.message);
        if !self.0.details.is_empty() {
            out.push_str(&format!(" {}", Value::Object(self.0.details.clone())));
        }
        if let Some(source) = &self.0.source {
            out.push_str(&format!(" ({source:#})"));
        }
        out
    }

    fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), Value::String(self.0.code.to_string()));
        error.insert("message".into(), Value::String(self.0.message.to_string()));
        for (k, v) in &self.0.details {
            error.insert(k.clone(), v.clone());
        }
        let mut root = Map::new();
        root.insert("error".into(), Value::Object(error));
        Value::Object(root)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0.code, self.0.status.as_u16())
    }
}

/// Debug prints the whole cause chain, which is what the request log records for a 500.
impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        if let Some(source) = &self.0.source {
            write!(f, ": {source:#}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    /// The cause of a 500 is logged by the request span (telemetry), not here.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.0.status).json(self.body())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        match err {
            sea_orm::DbErr::RecordNotFound(_) => Self::not_found("记录"),
            other => Self::internal(other),
        }
    }
}

impl From<crate::cache::CacheError> for ApiError {
    fn from(err: crate::cache::CacheError) -> Self {
        Self::internal(err)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

/// Turns actix's JSON extractor failures into the envelope. serde's message names the field and
/// the position, which is what a developer of the mini-program or console needs to fix a request.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请求体必须是 JSON（Content-Type: application/json）",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("请求体过大（上限 {limit} 字节）"),
        ),
        JsonPayloadError::Deserialize(de) if de.is_data() => {
            ApiError::bad_request("invalid_body", format!("请求字段有误：{de}"))
        }
        JsonPayloadError::Deserialize(de) => {
            ApiError::bad_request("invalid_json", format!("请求体不是有效的 JSON：{de}"))
        }
        other => ApiError::bad_request("invalid_body", format!("无法读取请求体：{other}")),
    };
    e.into()
}

pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_path", format!("路径参数有误：{err}")).into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("查询参数有误：{err}")).into()
}

/// Extractor configurations that route every parse failure through the envelope.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(256 * 1024)
        .error_handler(json_error)
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(path_error)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(query_error)
}

/// Catches error responses that did not come from `ApiError` (actix's own 404/405, payload
/// errors from other extractors, middleware) and rewrites them into the envelope, so that no
/// client ever has to parse actix's plain text.
pub fn envelope_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .response()
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let api = fallback_for(status);
        let (req, res) = res.into_parts();
        let mut new_res = HttpResponse::build(status).json(api.body());
        // Keep headers such as Allow and Retry-After that explain the error.
        for (name, value) in res.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                new_res.headers_mut().insert(name.clone(), value.clone());
            }
        }
        new_res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let res: ServiceResponse<EitherBody<B, BoxBody>> =
            ServiceResponse::new(req, new_res).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(res))
    })
}

fn fallback_for(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::new(status, "not_found", "请求的资源不存在"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, "method_not_allowed", "不支持该请求方法")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, "payload_too_large", "请求体过大"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(status, "unsupported_media_type", "不支持的请求格式")
        }
        s if s.is_client_error() => ApiError::new(status, "bad_request", "请求有误"),
        s => ApiError::new(s, "internal_error", "服务器开小差了，请稍后再试"),
    }
}

/// The default service: unknown paths get the envelope with 404.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "请求的资源不存在",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_cause_out_of_the_body() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 rejected"));
        let body = e.body().to_string();
        assert!(!body.contains("hunter2"));
        assert!(format!("{e:?}").contains("hunter2"));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn details_sit_next_to_code_and_message() {
        let e = ApiError::validation("phone", "手机号格式不正确");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"code": "validation_failed", "message": "手机号格式不正确", "field": "phone"}})
        );
    }
}
