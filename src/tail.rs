//! `GET /v1/streams/{stream}/tail`: the Worker's side of the live tail. The token may come as a
//! `bearer.<base64url>` subprotocol (browsers cannot set headers on a WebSocket); the query is
//! validated here and the upgrade handed to the stream's inbox, which holds the socket.

use crate::objects::directory;
use crate::objects::inbox::Client;
use icc_core::config::Config;
use icc_core::error::ApiError;
use icc_core::inbox_answers::unwritten_visible;
use icc_core::route::ApiRoute;
use icc_core::tail::{token_from_protocols, TailQuery};
use worker::{Env, Request, Response};

/// The token a tail request carries in `Sec-WebSocket-Protocol`, for tail routes only.
pub fn protocol_token(req: &Request, route: &Result<ApiRoute, ApiError>) -> Option<String> {
    if !matches!(route, Ok(ApiRoute::Tail { .. })) {
        return None;
    }
    let header = req.headers().get("sec-websocket-protocol").ok().flatten();
    token_from_protocols(header.as_deref())
}

/// Validates the request and opens the tail in the stream's inbox.
pub async fn open(
    req: Request,
    env: &Env,
    cfg: &Config,
    stream: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let upgrade = req.headers().get("upgrade").ok().flatten();
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err(ApiError::bad(
            "the tail is a WebSocket: send Upgrade: websocket",
        ));
    }
    let query = TailQuery::parse(query)?;
    match directory::exists(env, stream, 0, None).await {
        Ok(Some(true)) => {}
        Ok(Some(false)) if !unwritten_visible(stream, cfg.apps.as_deref()) => {
            return Err(ApiError::NoSuchStream);
        }
        // A stream not written yet that may be: the tail waits for its first receipts.
        Ok(Some(false)) => {}
        Ok(None) | Err(_) => return Err(ApiError::Unavailable),
    }
    let inbox = Client::new(env, stream, &cfg.location_hint).map_err(|_| ApiError::Unavailable)?;
    let protocols = req.headers().get("sec-websocket-protocol").ok().flatten();
    inbox.tail(query, protocols.as_deref()).await.map_err(|e| {
        worker::console_error!("tail could not be opened: {}", e);
        ApiError::Unavailable
    })
}
