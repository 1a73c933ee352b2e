//! `GET /v1/streams/{stream}/receipts/{id}/recording`: the archived recording file, streamed
//! from R2 with its content type, length, ETag and `Range` (206) support. Only files the
//! archive completed exist in R2 (a put is atomic), so anything else is 404.

use icc_core::error::ApiError;
use icc_core::recording_archive::{parse_range, RangeAsk};
use icc_core::recording_url::object_key;
use worker::{Env, Headers, Range, Request, Response};

const BUCKET: &str = "RECORDINGS";

fn unexpected(e: worker::Error) -> ApiError {
    worker::console_error!("recording download failed: {}", e);
    ApiError::Unavailable
}

pub async fn answer(
    req: &Request,
    env: &Env,
    stream: &str,
    id: &str,
) -> std::result::Result<Response, ApiError> {
    let not_archived = || ApiError::RecordingNotArchived {
        state: "not archived".to_owned(),
    };
    let Ok(bucket) = env.bucket(BUCKET) else {
        return Err(not_archived());
    };
    // The id arrives as written in the path (`:` may be percent-encoded).
    let id: String = js_sys::decode_uri_component(id)
        .map(String::from)
        .map_err(|_| ApiError::bad("receipt id is not valid percent-encoding"))?;
    let key = object_key(stream, &id);
    let Some(head) = bucket.head(key.clone()).await.map_err(unexpected)? else {
        return Err(not_archived());
    };
    let size = head.size();
    let range = req.headers().get("range").map_err(unexpected)?;
    let ask = parse_range(range.as_deref(), size);
    let get = bucket.get(key);
    let (get, status, part) = match ask {
        RangeAsk::Whole => (get, 200, None),
        RangeAsk::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable),
        RangeAsk::Part(r) => (
            get.range(Range::OffsetWithLength {
                offset: r.offset,
                length: r.length,
            }),
            206,
            Some(r),
        ),
    };
    let Some(object) = get.execute().await.map_err(unexpected)? else {
        return Err(not_archived());
    };
    let content_type = object
        .http_metadata()
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let etag = object.http_etag();
    let Some(body) = object.body() else {
        return Err(not_archived());
    };
    // R2's own body stream: the runtime knows its length and sends Content-Length.
    let resp =
        Response::from_body(body.response_body().map_err(unexpected)?).map_err(unexpected)?;
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(unexpected);
    set("content-type", &content_type)?;
    set("etag", &etag)?;
    set("accept-ranges", "bytes")?;
    match part {
        Some(r) => {
            set("content-length", &r.length.to_string())?;
            set(
                "content-range",
                &format!("bytes {}-{}/{}", r.offset, r.offset + r.length - 1, size),
            )?;
        }
        None => set("content-length", &size.to_string())?,
    }
    Ok(resp.with_headers(headers).with_status(status))
}
