//! The API description (`GET /v1/openapi.yaml`) and the normalized receipt's JSON Schema
//! (`GET /schema/receipt.v1.schema.json`, where the description's relative `$ref` resolves),
//! both bundled into the Worker and served without auth: describing the API is not secret.

use worker::{Headers, Response, Result};

/// `openapi/openapi.yaml`, as in the repository.
pub const OPENAPI_YAML: &str = include_str!("../openapi/openapi.yaml");
/// `schema/receipt.v1.schema.json`, as in the repository.
pub const RECEIPT_SCHEMA: &str = include_str!("../schema/receipt.v1.schema.json");

/// `GET /v1/openapi.yaml`.
pub fn description() -> Result<Response> {
    document(OPENAPI_YAML, "application/yaml; charset=utf-8")
}

/// `GET /schema/receipt.v1.schema.json`.
pub fn receipt_schema() -> Result<Response> {
    document(RECEIPT_SCHEMA, "application/schema+json; charset=utf-8")
}

fn document(body: &str, content_type: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "public, max-age=300")?;
    Ok(Response::ok(body)?.with_headers(headers))
}
