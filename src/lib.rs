//! The Worker: thin shells over `icc-core`. Routes requests to the push endpoint, the fetch API
//! and the health check; hosts the Durable Objects under `objects/`.

mod deadline;
mod env_config;
mod fast_path;
mod fetch_handler;
mod objects;
mod push_handler;
mod respond;

pub use objects::directory::Directory;
pub use objects::inbox::Inbox;
pub use objects::mns_puller::MnsPuller;

use worker::{
    event, Context, Date, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let arrived_ms = Date::now().as_millis() as i64;
    let path = req.path();
    // An unexpected error never becomes a bare 500: on /icc it is a 503 ICC retries (nothing was
    // acked), on /v1 a JSON error.
    if let Some(rest) = path.strip_prefix("/icc/") {
        let rest = rest.to_owned();
        return match push_handler::handle(req, &env, &ctx, &rest, arrived_ms).await {
            Ok(r) => Ok(r),
            Err(e) => {
                worker::console_error!("push failed unexpectedly: {}", e);
                respond::icc(503, "inbox_error")
            }
        };
    }
    if path == "/v1" || path.starts_with("/v1/") {
        return match fetch_handler::handle(req, &env, &path).await {
            Ok(r) => Ok(r),
            Err(e) => {
                worker::console_error!("fetch API failed unexpectedly: {}", e);
                respond::fetch_error(503, "unavailable", "unexpected error; retry")
            }
        };
    }
    match path.as_str() {
        "/healthz" if req.method() == Method::Get || req.method() == Method::Head => health(&env),
        "/healthz" => respond::fetch_error(405, "method_not_allowed", "use GET")
            .map(|r| respond::with_allow(r, "GET, HEAD")),
        "/icc" | "/icc/" => respond::icc(404, "unknown product"),
        _ => respond::fetch_error(404, "not_found", "no such route"),
    }
}

/// Cron: keeps every configured MNS puller's loop running.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cfg = env_config::load(&env);
    if !cfg.mns.enabled() {
        return;
    }
    let kicks = cfg
        .mns
        .queues
        .iter()
        .map(|q| objects::mns_puller::kick(&env, &q.queue_name));
    for (q, r) in cfg
        .mns
        .queues
        .iter()
        .zip(futures::future::join_all(kicks).await)
    {
        if r.is_err() {
            worker::console_error!("mns kick failed for queue {}", q.queue_name);
        }
    }
}

fn health(env: &Env) -> Result<Response> {
    let problems = env_config::load(env).problems();
    if problems.is_empty() {
        respond::json(200, r#"{"ok":true}"#.to_owned())
    } else {
        let body = serde_json::json!({ "ok": false, "problems": problems });
        respond::json(503, body.to_string())
    }
}
