//! Errors as OpenAI's API returns them: `{"error": {"message", "type",
//! "code"}}` with the matching HTTP status, so client libraries raise their
//! usual exceptions.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong and how to fix it.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, `server_error`, …).
    pub kind: &'static str,
    /// A stable machine-readable code (`voice_not_found`, `queue_full`, …).
    pub code: &'static str,
    /// Seconds after which a retry may succeed (503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A 4xx error in the client's request.
    pub fn invalid(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: "invalid_request_error",
            code,
            retry_after: None,
        }
    }

    /// An error with `status`: the client's (4xx) or the server's (5xx).
    pub fn from_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            },
            ..Self::invalid(status, code, message)
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::invalid(StatusCode::BAD_REQUEST, code, message)
    }

    /// A failure on the server's side (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            code: "internal_error",
            retry_after: None,
        }
    }

    /// The queue is full (503 with `Retry-After`).
    pub fn overloaded(message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            kind: "server_error",
            code: "queue_full",
            retry_after: Some(retry_after),
        }
    }

    /// The request took longer than the server allows (504).
    pub fn timeout(seconds: f64) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!("the request took longer than the server's limit of {seconds} s: send shorter input or retry"),
            kind: "server_error",
            code: "timeout",
            retry_after: None,
        }
    }

    /// A missing or wrong API key (401).
    pub fn unauthorized() -> Self {
        Self::invalid(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "missing or wrong API key: send the header `Authorization: Bearer <key>` with the server's VIVACE_API_KEY",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": null,
                "code": self.code,
            }
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    /// Malformed JSON (400), a body that does not fit the schema (400),
    /// a wrong content type (415) or a body over the limit (413).
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            }
            other => (other.status(), "invalid_request"),
        };
        let hint = match code {
            "unsupported_media_type" => {
                ": send the body as JSON with `Content-Type: application/json`"
            }
            "body_too_large" => ": send less text per request",
            _ => "",
        };
        Self::invalid(status, code, format!("{}{hint}", rejection.body_text()))
    }
}

impl From<MultipartRejection> for ApiError {
    /// A multipart body without a valid boundary (400); a body that is not
    /// multipart at all is refused before, with 415, by the endpoint.
    fn from(rejection: MultipartRejection) -> Self {
        Self::from_status(
            rejection.status(),
            "invalid_upload",
            format!(
                "{}: upload the recording as multipart/form-data with a `file` field",
                rejection.body_text()
            ),
        )
    }
}
