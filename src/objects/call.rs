//! One way to call a Durable Object from the Worker (or from another object): an internal route
//! (method and path, printed by `icc_core::object_route`), an optional naming header and an
//! optional body; the answer as status and text.

use icc_core::object_route::Verb;
use wasm_bindgen::JsValue;
use worker::{Method, Request, RequestInit, Result, Stub};

/// A status and JSON text from an object, passed on as it is.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

fn method(verb: Verb) -> Method {
    match verb {
        Verb::Get => Method::Get,
        Verb::Put => Method::Put,
        Verb::Post => Method::Post,
        Verb::Delete => Method::Delete,
    }
}

/// The verb of an incoming internal request; `None` for a method no internal route uses.
pub fn verb(m: &Method) -> Option<Verb> {
    Verb::parse(m.as_ref())
}

/// Calls `stub` at `https://<host><path>`; `name` is sent as `(header, value)` when given, so the
/// object knows which stream or queue it serves.
pub async fn call(
    stub: &Stub,
    host: &str,
    (verb, path): (Verb, &str),
    name: Option<(&str, &str)>,
    body: Option<JsValue>,
) -> Result<Answer> {
    let mut init = RequestInit::new();
    init.with_method(method(verb));
    init.with_body(body);
    let req = Request::new_with_init(&format!("https://{host}{path}"), &init)?;
    if let Some((header, value)) = name {
        req.headers().set(header, value)?;
    }
    let mut resp = stub.fetch_with_request(req).await?;
    let body = resp.text().await?;
    Ok(Answer {
        status: resp.status_code(),
        body,
    })
}
