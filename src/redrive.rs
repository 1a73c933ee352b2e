//! `POST /v1/streams/{stream}/quarantine/{seq}/redrive[?type=]` and
//! `POST /v1/streams/{stream}/quarantine/redrive?reason=[&type=][&after=]`: the query checked in
//! the core ([`icc_core::redrive`]), the work done by the stream's inbox. A stream that was never
//! written has no quarantine: one item is `404`, a bulk redrive an empty answer.

use crate::objects::directory;
use crate::objects::inbox::Client;
use crate::respond;
use icc_core::config::Config;
use icc_core::error::ApiError;
use icc_core::inbox_answers::unwritten_visible;
use icc_core::redrive::{self, BulkAnswer};
use worker::{Env, Response};

type Answered = std::result::Result<Response, ApiError>;

fn json(status: u16, body: String) -> Answered {
    respond::json(status, body).map_err(|_| ApiError::Unavailable)
}

/// Whether the stream was written; `Err` for a stream that is neither written nor visible.
async fn written(env: &Env, cfg: &Config, stream: &str) -> std::result::Result<bool, ApiError> {
    match directory::exists(env, stream, 0, None).await {
        Ok(Some(true)) => Ok(true),
        Ok(Some(false)) if unwritten_visible(stream, cfg.apps.as_deref()) => Ok(false),
        Ok(Some(false)) => Err(ApiError::NoSuchStream),
        Ok(None) | Err(_) => Err(ApiError::Unavailable),
    }
}

pub async fn one(env: &Env, cfg: &Config, stream: &str, seq: i64, query: &str) -> Answered {
    let type_name = redrive::single_query(query)?;
    if !written(env, cfg, stream).await? {
        return Err(ApiError::NoSuchItem);
    }
    let inbox = Client::new(env, stream, &cfg.location_hint).map_err(|_| ApiError::Unavailable)?;
    match inbox.redrive(seq, type_name).await {
        Ok(a) => json(a.status, a.body),
        Err(_) => Err(ApiError::Unavailable),
    }
}

pub async fn bulk(env: &Env, cfg: &Config, stream: &str, query: &str) -> Answered {
    let q = redrive::bulk_query(query)?;
    if !written(env, cfg, stream).await? {
        let empty = BulkAnswer {
            next_after: q.after,
            ..Default::default()
        };
        return json(200, serde_json::to_string(&empty).unwrap_or_default());
    }
    let inbox = Client::new(env, stream, &cfg.location_hint).map_err(|_| ApiError::Unavailable)?;
    match inbox
        .redrive_bulk(q.reason.as_str(), q.after, q.type_name)
        .await
    {
        Ok(a) => json(a.status, a.body),
        Err(_) => Err(ApiError::Unavailable),
    }
}
