//! The console page at `/`: one HTML page, its script and its stylesheet, bundled into the
//! Worker at build time (no CDN, no outside request), served with a strict Content-Security-Policy.

use worker::{Headers, Response, Result};

const INDEX_HTML: &str = include_str!("../assets/console/index.html");
const APP_JS: &str = include_str!("../assets/console/app.js");
const APP_CSS: &str = include_str!("../assets/console/app.css");

/// Only this origin's script, style, API and WebSocket; no inline code, no frames, no forms
/// posted elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's assets by path, with their content type.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some((INDEX_HTML, "text/html; charset=utf-8")),
        "/console/app.js" => Some((APP_JS, "text/javascript; charset=utf-8")),
        "/console/app.css" => Some((APP_CSS, "text/css; charset=utf-8")),
        _ => None,
    }
}

/// Serves one asset (GET or HEAD).
pub fn serve(body: &'static str, content_type: &str, head: bool) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("content-security-policy", CSP)?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("referrer-policy", "no-referrer")?;
    headers.set("x-frame-options", "DENY")?;
    headers.set("cache-control", "no-cache")?;
    let resp = if head {
        Response::empty()?
    } else {
        Response::ok(body)?
    };
    Ok(resp.with_headers(headers))
}
