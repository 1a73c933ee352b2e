//! The public routes, parsed from a method and a path: which handler answers, or which refusal
//! (404, 405 with `Allow`) and when it may be given. Adding a route is one variant here, one arm
//! in [`ApiRoute::parse`] and one arm in the Worker's dispatch.

use crate::address::{is_consumer, is_stream};
use crate::error::{ApiError, IccAnswer};
use crate::message_type::Product;

/// A public route of the Worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute {
    /// `GET|HEAD /healthz`, without auth.
    Health,
    /// `POST /icc/{product}[/{app}]`. `rest` is the path after `/icc/` (product included): the
    /// app is checked only after the token (`PushAddress::parse`), so app names cannot be probed.
    Push { product: Product, rest: String },
    /// `GET /v1/streams`.
    Streams,
    /// `GET /v1/stats`.
    AllStats,
    /// `GET /v1/streams/{stream}/receipts`.
    Receipts { stream: String },
    /// `GET /v1/streams/{stream}/quarantine`.
    Quarantine { stream: String },
    /// `GET /v1/streams/{stream}/stats`.
    StreamStats { stream: String },
    /// `GET|PUT|DELETE /v1/streams/{stream}/consumers/{name}`.
    Consumer {
        stream: String,
        name: String,
        op: ConsumerOp,
    },
    /// `GET|HEAD /v1/openapi.yaml`, without auth: the API description.
    OpenApi,
    /// `GET|HEAD /schema/receipt.v1.schema.json`, without auth: the receipt's JSON Schema, where
    /// the description's relative `$ref` points.
    ReceiptSchema,
}

/// What a consumer request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerOp {
    Get,
    Put,
    Delete,
}

/// Which credential a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `?token=` with `PUSH_TOKEN` (checked by the push handler, after the product and method).
    Push,
    /// `Authorization: Bearer` with `FETCH_TOKEN`.
    Fetch,
}

/// A request no route takes, and when to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Under `/icc`: answered at once (the products are public; the method is checked before
    /// the token, as ICC's console documents it).
    Push(IccAnswer),
    /// Under `/v1`: answered only once the bearer token is accepted, so the API cannot be
    /// mapped without it.
    Fetch(ApiError),
    /// Anywhere else: answered at once.
    Public(ApiError),
}

const GET: &str = "GET, HEAD";

fn is_get(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

fn get_only(method: &str, route: ApiRoute) -> Result<ApiRoute, ApiError> {
    if is_get(method) {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed { allow: GET })
    }
}

impl ApiRoute {
    /// The route of `method` (upper case, as HTTP sends it) on `path` (without the query).
    pub fn parse(method: &str, path: &str) -> Result<ApiRoute, Refusal> {
        if let Some(rest) = path.strip_prefix("/icc/") {
            return Self::push(method, rest).map_err(Refusal::Push);
        }
        if path == "/icc" {
            return Err(Refusal::Push(IccAnswer::NotFound));
        }
        if let Some(described) = Self::description(method, path) {
            return described;
        }
        if path == "/v1" || path.starts_with("/v1/") {
            return Self::fetch(method, path).map_err(Refusal::Fetch);
        }
        match path {
            "/healthz" if is_get(method) => Ok(ApiRoute::Health),
            "/healthz" => Err(Refusal::Public(ApiError::MethodNotAllowed { allow: GET })),
            _ => Err(Refusal::Public(ApiError::NotFound)),
        }
    }

    /// The credential this route needs.
    pub fn auth(&self) -> Auth {
        match self {
            ApiRoute::Health | ApiRoute::OpenApi | ApiRoute::ReceiptSchema => Auth::None,
            ApiRoute::Push { .. } => Auth::Push,
            ApiRoute::Streams
            | ApiRoute::AllStats
            | ApiRoute::Receipts { .. }
            | ApiRoute::Quarantine { .. }
            | ApiRoute::StreamStats { .. }
            | ApiRoute::Consumer { .. } => Auth::Fetch,
        }
    }

    /// The API description and the receipt schema: public (describing the API is not secret),
    /// so answered before the `/v1` token check.
    fn description(method: &str, path: &str) -> Option<Result<ApiRoute, Refusal>> {
        let route = match path {
            "/v1/openapi.yaml" => ApiRoute::OpenApi,
            "/schema/receipt.v1.schema.json" => ApiRoute::ReceiptSchema,
            _ => return None,
        };
        Some(get_only(method, route).map_err(Refusal::Public))
    }

    fn push(method: &str, rest: &str) -> Result<ApiRoute, IccAnswer> {
        let product = rest
            .split('/')
            .next()
            .and_then(Product::from_path)
            .ok_or(IccAnswer::NotFound)?;
        if method != "POST" {
            return Err(IccAnswer::MethodNotAllowed);
        }
        Ok(ApiRoute::Push {
            product,
            rest: rest.to_owned(),
        })
    }

    fn fetch(method: &str, path: &str) -> Result<ApiRoute, ApiError> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
        match parts.as_slice() {
            ["streams"] => get_only(method, ApiRoute::Streams),
            ["stats"] => get_only(method, ApiRoute::AllStats),
            ["streams", stream, rest @ ..] => {
                if !is_stream(stream) {
                    return Err(ApiError::NoSuchStream);
                }
                let stream = (*stream).to_owned();
                match rest {
                    ["receipts"] => get_only(method, ApiRoute::Receipts { stream }),
                    ["quarantine"] => get_only(method, ApiRoute::Quarantine { stream }),
                    ["stats"] => get_only(method, ApiRoute::StreamStats { stream }),
                    ["consumers", name] => {
                        let op = match method {
                            "GET" => ConsumerOp::Get,
                            "PUT" => ConsumerOp::Put,
                            "DELETE" => ConsumerOp::Delete,
                            _ => {
                                return Err(ApiError::MethodNotAllowed {
                                    allow: "GET, PUT, DELETE",
                                })
                            }
                        };
                        if !is_consumer(name) {
                            return Err(ApiError::bad("consumer names are 1-64 of [A-Za-z0-9_.-]"));
                        }
                        Ok(ApiRoute::Consumer {
                            stream,
                            name: (*name).to_owned(),
                            op,
                        })
                    }
                    _ => Err(ApiError::NotFound),
                }
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> ApiRoute {
        ApiRoute::parse(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    fn refused(method: &str, path: &str) -> Refusal {
        ApiRoute::parse(method, path).expect_err(path)
    }

    fn stream(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn push_routes() {
        assert_eq!(
            ok("POST", "/icc/llm"),
            ApiRoute::Push {
                product: Product::Llm,
                rest: "llm".into()
            }
        );
        assert_eq!(
            ok("POST", "/icc/bot/shop1/"),
            ApiRoute::Push {
                product: Product::Bot,
                rest: "bot/shop1/".into()
            }
        );
        // the app is not judged here (after the token), the product and the method are
        assert!(matches!(
            ok("POST", "/icc/agent/a/b"),
            ApiRoute::Push { .. }
        ));
        assert_eq!(
            refused("POST", "/icc/sms"),
            Refusal::Push(IccAnswer::NotFound)
        );
        assert_eq!(
            refused("GET", "/icc/nope"),
            Refusal::Push(IccAnswer::NotFound)
        );
        assert_eq!(refused("POST", "/icc"), Refusal::Push(IccAnswer::NotFound));
        assert_eq!(refused("POST", "/icc/"), Refusal::Push(IccAnswer::NotFound));
        for m in ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            assert_eq!(
                refused(m, "/icc/llm/shop"),
                Refusal::Push(IccAnswer::MethodNotAllowed)
            );
        }
        assert_eq!(ok("POST", "/icc/llm").auth(), Auth::Push);
    }

    #[test]
    fn fetch_routes() {
        assert_eq!(ok("GET", "/v1/streams"), ApiRoute::Streams);
        assert_eq!(ok("HEAD", "/v1/streams/"), ApiRoute::Streams);
        assert_eq!(ok("GET", "/v1/stats"), ApiRoute::AllStats);
        assert_eq!(
            ok("GET", "/v1/streams/shop-1/receipts"),
            ApiRoute::Receipts {
                stream: stream("shop-1")
            }
        );
        assert_eq!(
            ok("GET", "/v1/streams/default/quarantine"),
            ApiRoute::Quarantine {
                stream: stream("default")
            }
        );
        assert_eq!(
            ok("GET", "/v1/streams/default/stats"),
            ApiRoute::StreamStats {
                stream: stream("default")
            }
        );
        for (m, op) in [
            ("GET", ConsumerOp::Get),
            ("PUT", ConsumerOp::Put),
            ("DELETE", ConsumerOp::Delete),
        ] {
            assert_eq!(
                ok(m, "/v1/streams/s/consumers/etl.v2"),
                ApiRoute::Consumer {
                    stream: stream("s"),
                    name: "etl.v2".into(),
                    op
                }
            );
        }
        assert_eq!(ok("GET", "/v1/stats").auth(), Auth::Fetch);
    }

    #[test]
    fn fetch_refusals_wait_for_the_token() {
        let not_found = Refusal::Fetch(ApiError::NotFound);
        for p in [
            "/v1",
            "/v1/",
            "/v1/nope",
            "/v1/streams/default",
            "/v1/streams/default/nope",
            "/v1/streams/default/consumers",
            "/v1/streams/default/consumers/a/b",
        ] {
            assert_eq!(refused("GET", p), not_found, "{p}");
        }
        for name in ["bad%20name", "sem%3Bcolon", &"a".repeat(65)] {
            assert_eq!(
                refused("PUT", &format!("/v1/streams/s/consumers/{name}")),
                Refusal::Fetch(ApiError::bad("consumer names are 1-64 of [A-Za-z0-9_.-]")),
                "{name}"
            );
        }
        assert_eq!(
            refused("GET", "/v1/streams/bad%20name/receipts"),
            Refusal::Fetch(ApiError::NoSuchStream)
        );
        assert_eq!(
            refused("POST", "/v1/streams/bad%20name/receipts"),
            Refusal::Fetch(ApiError::NoSuchStream)
        );
        let get = Refusal::Fetch(ApiError::MethodNotAllowed { allow: "GET, HEAD" });
        for p in [
            "/v1/streams",
            "/v1/stats",
            "/v1/streams/s/receipts",
            "/v1/streams/s/quarantine",
            "/v1/streams/s/stats",
        ] {
            assert_eq!(refused("POST", p), get, "{p}");
            assert_eq!(refused("DELETE", p), get, "{p}");
        }
        assert_eq!(
            refused("POST", "/v1/streams/s/consumers/c"),
            Refusal::Fetch(ApiError::MethodNotAllowed {
                allow: "GET, PUT, DELETE"
            })
        );
    }

    #[test]
    fn other_routes() {
        assert_eq!(ok("GET", "/healthz"), ApiRoute::Health);
        assert_eq!(ok("HEAD", "/healthz"), ApiRoute::Health);
        assert_eq!(ok("GET", "/healthz").auth(), Auth::None);
        assert_eq!(
            refused("POST", "/healthz"),
            Refusal::Public(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        );
        for p in [
            "/",
            "/v1x",
            "/healthz/",
            "/iccx",
            "/v2/streams",
            "/schema/",
            "/schema/receipt.v2.schema.json",
        ] {
            assert_eq!(
                refused("GET", p),
                Refusal::Public(ApiError::NotFound),
                "{p}"
            );
        }
    }

    #[test]
    fn description_routes_need_no_token() {
        for m in ["GET", "HEAD"] {
            assert_eq!(ok(m, "/v1/openapi.yaml"), ApiRoute::OpenApi);
            assert_eq!(
                ok(m, "/schema/receipt.v1.schema.json"),
                ApiRoute::ReceiptSchema
            );
        }
        assert_eq!(ok("GET", "/v1/openapi.yaml").auth(), Auth::None);
        assert_eq!(
            ok("GET", "/schema/receipt.v1.schema.json").auth(),
            Auth::None
        );
        let get = Refusal::Public(ApiError::MethodNotAllowed { allow: "GET, HEAD" });
        for m in ["POST", "PUT", "DELETE"] {
            assert_eq!(refused(m, "/v1/openapi.yaml"), get);
            assert_eq!(refused(m, "/schema/receipt.v1.schema.json"), get);
        }
        // anything else under /v1 still waits for the token
        assert_eq!(
            refused("GET", "/v1/openapi.json"),
            Refusal::Fetch(ApiError::NotFound)
        );
    }
}
