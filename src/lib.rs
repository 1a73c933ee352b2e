//! The Worker: thin shells over `icc-core`. Dispatches each request on its parsed route
//! (`icc_core::route::ApiRoute`) to the push endpoint, the fetch API or the health check; hosts
//! the Durable Objects under `objects/`.

mod console_page;
mod deadline;
mod delivery;
mod env_config;
mod fast_path;
mod fetch_handler;
mod native_digest;
mod objects;
mod openapi;
mod push_handler;
mod recording_download;
mod redrive;
mod respond;
mod tail;

pub use objects::directory::Directory;
pub use objects::inbox::Inbox;
pub use objects::mns_puller::MnsPuller;

use icc_core::error::{ApiError, IccAnswer};
use icc_core::route::{ApiRoute, Auth, Refusal};
use worker::{
    event, Context, Date, Env, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let arrived_ms = Date::now().as_millis() as i64;
    let route = ApiRoute::parse(req.method().as_ref(), &req.path());
    // An unexpected error never becomes a bare 500: on /icc it is a 503 ICC retries (nothing was
    // acked), on /v1 a JSON error.
    match route {
        Ok(ApiRoute::Health) => health(&env),
        Ok(ApiRoute::Console { path }) => match console_page::asset(path) {
            Some((body, content_type)) => {
                console_page::serve(body, content_type, req.method() == worker::Method::Head)
            }
            None => respond::error(&ApiError::NotFound),
        },
        Ok(ApiRoute::OpenApi) => openapi::description(),
        Ok(ApiRoute::ReceiptSchema) => openapi::receipt_schema(),
        Ok(route @ ApiRoute::Push { .. }) => {
            match push_handler::handle(req, &env, &ctx, route, arrived_ms).await {
                Ok(r) => Ok(r),
                Err(e) => {
                    worker::console_error!("push failed unexpectedly: {}", e);
                    respond::icc(IccAnswer::InboxError)
                }
            }
        }
        Ok(route) => {
            debug_assert_eq!(route.auth(), Auth::Fetch);
            fetch_api(req, &env, Ok(route)).await
        }
        Err(Refusal::Fetch(e)) => fetch_api(req, &env, Err(e)).await,
        Err(Refusal::Push(answer)) => respond::icc(answer),
        Err(Refusal::Public(e)) => respond::error(&e),
    }
}

async fn fetch_api(
    req: Request,
    env: &Env,
    route: std::result::Result<ApiRoute, ApiError>,
) -> Result<Response> {
    match fetch_handler::handle(req, env, route).await {
        Ok(r) => Ok(r),
        Err(e) => {
            worker::console_error!("fetch API failed unexpectedly: {}", e);
            respond::error(&ApiError::Unavailable)
        }
    }
}

/// The receipts queue and its dead-letter queue (see `delivery`).
#[event(queue)]
async fn queue(
    batch: worker::MessageBatch<wasm_bindgen::JsValue>,
    env: Env,
    ctx: Context,
) -> Result<()> {
    delivery::consume(batch, env, ctx).await;
    Ok(())
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
    let mut problems = env_config::load(env).problems();
    problems.extend(
        icc_core::recording_archive::ArchiveConfig::from_lookup(&|n: &str| {
            env.var(n).ok().map(|v| v.to_string())
        })
        .health_problems(env.bucket("RECORDINGS").is_ok()),
    );
    if problems.is_empty() {
        respond::json(200, r#"{"ok":true}"#.to_owned())
    } else {
        let body = serde_json::json!({ "ok": false, "problems": problems });
        respond::json(503, body.to_string())
    }
}
