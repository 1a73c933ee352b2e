//! One way to call a Durable Object from the Worker (or from another object): an internal
//! request with a method, a path, an optional identifying header and an optional body; the answer
//! as status and text. These routes are reachable only through a stub.

use wasm_bindgen::JsValue;
use worker::{Method, Request, RequestInit, Result, Stub};

/// Calls `stub` at `https://<host><path>`; `name` is sent as `(header, value)` when given, so the
/// object knows which stream or queue it serves.
pub async fn call(
    stub: &Stub,
    host: &str,
    method: Method,
    path: &str,
    name: Option<(&str, &str)>,
    body: Option<JsValue>,
) -> Result<(u16, String)> {
    let mut init = RequestInit::new();
    init.with_method(method);
    init.with_body(body);
    let req = Request::new_with_init(&format!("https://{host}{path}"), &init)?;
    if let Some((header, value)) = name {
        req.headers().set(header, value)?;
    }
    let mut resp = stub.fetch_with_request(req).await?;
    let text = resp.text().await?;
    Ok((resp.status_code(), text))
}
