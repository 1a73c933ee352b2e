//! JSON responses.

use icc_core::answer;
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

/// An answer on `/icc`: `{code,msg}`; HTTP status 200 for code 0.
pub fn icc(code: u16, msg: &str) -> Result<Response> {
    json(if code == 0 { 200 } else { code }, answer::icc(code, msg))
}

/// A fetch API error: `{"error":{"code","message"}}`.
pub fn fetch_error(status: u16, code: &str, message: &str) -> Result<Response> {
    json(status, answer::fetch_error(code, message))
}

/// Adds `Allow` to a 405.
pub fn with_allow(resp: Response, allow: &str) -> Response {
    let _ = resp.headers().set("allow", allow);
    resp
}
