//! One error type per public surface: [`ApiError`] for the fetch API under `/v1` (and the
//! routes outside both surfaces), [`IccAnswer`] for every answer on `/icc`. Each knows its HTTP
//! status, its code and its body; nothing else in the product writes a status or a code.

use crate::answer;

/// An error of the fetch API: `{"error":{"code","message"}}` with its HTTP status.
///
/// "Try again" has one code: [`ApiError::Unavailable`] (`503 unavailable`), whether the inbox
/// did not answer, failed, or its storage was not ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: a query parameter, body or name is not what the route takes.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or wrong bearer token.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// 404: no such route.
    #[error("no such route")]
    NotFound,
    /// 404: the stream name is not a valid stream name.
    #[error("no such stream")]
    NoSuchStream,
    /// 405, with `Allow`.
    #[error("use {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// 409: a cursor beyond the stream's head.
    #[error("after={after} is beyond head_seq={head_seq}")]
    CursorAhead { after: i64, head_seq: i64 },
    /// 409: a `too_large` stub holds only the head of its body and cannot be redriven.
    #[error("a too_large stub holds only the first 64 KiB of its body and cannot be redriven")]
    Incomplete,
    /// 404: no quarantined item with that `seq`.
    #[error("no such quarantine item")]
    NoSuchItem,
    /// 409: the stream already has the most consumers it may have.
    #[error("at most {max} consumers per stream")]
    TooManyConsumers { max: usize },
    /// 410: the cursor is below what retention removed.
    #[error(
        "receipts up to seq {removed_through} were removed by retention; read from after={removed_through}"
    )]
    CursorExpired { removed_through: i64 },
    /// 429: the stream already holds the most long polls it may hold.
    #[error("too many long polls on this stream")]
    TooManyWaiters,
    /// 500: secrets or vars missing or weak.
    #[error("the fetch API is not configured; see /healthz")]
    Misconfigured,
    /// 503: the inbox did not answer, failed or was not ready. Retry.
    #[error("temporarily unavailable; retry")]
    Unavailable,
    /// 404: the receipt's recording is not archived (its status, or `none` without a job).
    #[error("recording not archived (status: {state})")]
    RecordingNotArchived { state: String },
    /// 416: a `Range` outside the file.
    #[error("range not satisfiable")]
    RangeNotSatisfiable,
    /// 507 (between the Worker and the inbox only): the inbox's storage is full.
    #[error("storage is full")]
    StorageFull,
}

impl ApiError {
    /// `400 bad_request` with `message`.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(message.into())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::NotFound | ApiError::NoSuchStream | ApiError::NoSuchItem => 404,
            ApiError::RecordingNotArchived { .. } => 404,
            ApiError::RangeNotSatisfiable => 416,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::CursorAhead { .. } | ApiError::TooManyConsumers { .. } => 409,
            ApiError::Incomplete => 409,
            ApiError::CursorExpired { .. } => 410,
            ApiError::TooManyWaiters => 429,
            ApiError::Misconfigured => 500,
            ApiError::Unavailable => 503,
            ApiError::StorageFull => 507,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound | ApiError::NoSuchStream | ApiError::NoSuchItem => "not_found",
            ApiError::Incomplete => "incomplete",
            ApiError::RecordingNotArchived { .. } => "not_found",
            ApiError::RangeNotSatisfiable => "range_not_satisfiable",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::CursorAhead { .. } => "cursor_ahead",
            ApiError::TooManyConsumers { .. } => "too_many_consumers",
            ApiError::CursorExpired { .. } => "cursor_expired",
            ApiError::TooManyWaiters => "too_many_waiters",
            ApiError::Misconfigured => "misconfigured",
            ApiError::Unavailable => "unavailable",
            ApiError::StorageFull => "storage_full",
        }
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allow } => Some(allow),
            _ => None,
        }
    }

    /// `{"error":{"code":…,"message":…}}`.
    pub fn body(&self) -> String {
        answer::fetch_error(self.code(), &self.to_string())
    }
}

/// Every answer on `/icc`: `{"code":n,"msg":"…"}`, HTTP status = code (200 for success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IccAnswer {
    /// Every message committed, known or quarantined.
    #[error("Success")]
    Success,
    /// A `type=` that does not belong to the product (or given twice).
    #[error("unknown type")]
    UnknownType,
    /// Missing, wrong or repeated token.
    #[error("unauthorized")]
    Unauthorized,
    /// Unknown product, or an invalid or unlisted app.
    #[error("unknown product or app")]
    NotFound,
    /// Not POST (with `Allow: POST`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Body over `MAX_BODY_BYTES` (a stub is quarantined).
    #[error("body too large")]
    TooLarge,
    /// Secrets or vars missing or weak.
    #[error("misconfigured")]
    Misconfigured,
    /// The inbox did not confirm within the ack deadline.
    #[error("inbox_timeout")]
    InboxTimeout,
    /// The inbox failed.
    #[error("inbox_error")]
    InboxError,
    /// The inbox's storage is full.
    #[error("inbox_full")]
    InboxFull,
}

impl IccAnswer {
    /// The `code` field: 0 for success, else the HTTP status.
    pub fn code(self) -> u16 {
        match self {
            IccAnswer::Success => 0,
            IccAnswer::UnknownType => 400,
            IccAnswer::Unauthorized => 401,
            IccAnswer::NotFound => 404,
            IccAnswer::MethodNotAllowed => 405,
            IccAnswer::TooLarge => 413,
            IccAnswer::Misconfigured => 500,
            IccAnswer::InboxTimeout | IccAnswer::InboxError | IccAnswer::InboxFull => 503,
        }
    }

    pub fn status(self) -> u16 {
        match self.code() {
            0 => 200,
            c => c,
        }
    }

    /// The `Allow` header of a 405.
    pub fn allow(self) -> Option<&'static str> {
        (self == IccAnswer::MethodNotAllowed).then_some("POST")
    }

    /// `{"code":…,"msg":…}`.
    pub fn body(self) -> String {
        answer::icc(self.code(), &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors() {
        let e = ApiError::CursorAhead {
            after: 9,
            head_seq: 3,
        };
        assert_eq!((e.status(), e.code()), (409, "cursor_ahead"));
        assert_eq!(
            e.body(),
            r#"{"error":{"code":"cursor_ahead","message":"after=9 is beyond head_seq=3"}}"#
        );
        let e = ApiError::MethodNotAllowed { allow: "GET, HEAD" };
        assert_eq!((e.status(), e.allow()), (405, Some("GET, HEAD")));
        assert_eq!(ApiError::Unavailable.status(), 503);
        assert_eq!(ApiError::Unavailable.code(), "unavailable");
        assert_eq!(
            ApiError::bad("x").body(),
            r#"{"error":{"code":"bad_request","message":"x"}}"#
        );
        assert_eq!(ApiError::NotFound.allow(), None);
        assert_eq!(
            (ApiError::Incomplete.status(), ApiError::Incomplete.code()),
            (409, "incomplete")
        );
        assert_eq!(
            (ApiError::NoSuchItem.status(), ApiError::NoSuchItem.code()),
            (404, "not_found")
        );
    }

    #[test]
    fn icc_answers() {
        assert_eq!(IccAnswer::Success.body(), r#"{"code":0,"msg":"Success"}"#);
        assert_eq!(IccAnswer::Success.status(), 200);
        assert_eq!(
            IccAnswer::InboxFull.body(),
            r#"{"code":503,"msg":"inbox_full"}"#
        );
        assert_eq!(IccAnswer::InboxTimeout.status(), 503);
        assert_eq!(
            (
                IccAnswer::MethodNotAllowed.status(),
                IccAnswer::MethodNotAllowed.allow()
            ),
            (405, Some("POST"))
        );
        assert_eq!(
            IccAnswer::Unauthorized.body(),
            r#"{"code":401,"msg":"unauthorized"}"#
        );
        assert_eq!(IccAnswer::TooLarge.status(), 413);
        assert_eq!(IccAnswer::Misconfigured.status(), 500);
        assert_eq!(IccAnswer::UnknownType.status(), 400);
        assert_eq!(IccAnswer::NotFound.status(), 404);
    }
}
