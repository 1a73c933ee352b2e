//! JSON responses. Statuses and codes come from the core's error enums, never from here.

use icc_core::error::{ApiError, IccAnswer};
use worker::{Headers, Response, Result};

/// A JSON response with `status`.
pub fn json(status: u16, body: String) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}

/// An answer on `/icc`: `{code,msg}`, with `Allow` on a 405.
pub fn icc(answer: IccAnswer) -> Result<Response> {
    let resp = json(answer.status(), answer.body())?;
    Ok(with_allow(resp, answer.allow()))
}

/// A fetch API error: `{"error":{"code","message"}}`, with `Allow` on a 405.
pub fn error(e: &ApiError) -> Result<Response> {
    let resp = json(e.status(), e.body())?;
    Ok(with_allow(resp, e.allow()))
}

fn with_allow(resp: Response, allow: Option<&str>) -> Response {
    if let Some(allow) = allow {
        let _ = resp.headers().set("allow", allow);
    }
    resp
}
