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
    /// `POST /v1/streams/{stream}/quarantine/{seq}/redrive`.
    Redrive { stream: String, seq: i64 },
    /// `POST /v1/streams/{stream}/quarantine/redrive` (by reason, in batches).
    RedriveBulk { stream: String },
    /// `GET /v1/streams/{stream}/dead-letters`.
    DeadLetters { stream: String },
    /// `POST /v1/streams/{stream}/dead-letters/redeliver`.
    Redeliver { stream: String },
    /// `GET /v1/streams/{stream}/tail`, upgraded to a WebSocket.
    Tail { stream: String },
    /// `GET|HEAD /`, `/console/app.js`, `/console/app.css`: the console page, without auth (it
    /// holds no data). `path` is the asset's path.
    Console { path: &'static str },
    /// `GET /v1/streams/{stream}/receipts/{id}/recording`: the archived recording file.
    Recording { stream: String, id: String },
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

fn post_only(method: &str, route: ApiRoute) -> Result<ApiRoute, ApiError> {
    if method == "POST" {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed { allow: "POST" })
    }
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
            "/" | "/console/app.js" | "/console/app.css" => {
                let path = match path {
                    "/" => "/",
                    "/console/app.js" => "/console/app.js",
                    _ => "/console/app.css",
                };
                get_only(method, ApiRoute::Console { path }).map_err(Refusal::Public)
            }
            "/healthz" if is_get(method) => Ok(ApiRoute::Health),
            "/healthz" => Err(Refusal::Public(ApiError::MethodNotAllowed { allow: GET })),
            _ => Err(Refusal::Public(ApiError::NotFound)),
        }
    }

    /// The credential this route needs.
    pub fn auth(&self) -> Auth {
        match self {
            ApiRoute::Health
            | ApiRoute::Console { .. }
            | ApiRoute::OpenApi
            | ApiRoute::ReceiptSchema => Auth::None,
            ApiRoute::Push { .. } => Auth::Push,
            ApiRoute::Streams
            | ApiRoute::AllStats
            | ApiRoute::Receipts { .. }
            | ApiRoute::Quarantine { .. }
            | ApiRoute::StreamStats { .. }
            | ApiRoute::Redrive { .. }
            | ApiRoute::RedriveBulk { .. }
            | ApiRoute::DeadLetters { .. }
            | ApiRoute::Redeliver { .. }
            | ApiRoute::Tail { .. }
            | ApiRoute::Consumer { .. } => Auth::Fetch,
            ApiRoute::Recording { .. } => Auth::Fetch,
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
                    ["quarantine", "redrive"] => {
                        post_only(method, ApiRoute::RedriveBulk { stream })
                    }
                    ["quarantine", seq, "redrive"] => match seq.parse::<i64>() {
                        Ok(seq) if seq > 0 => post_only(method, ApiRoute::Redrive { stream, seq }),
                        _ => Err(ApiError::NoSuchItem),
                    },
                    ["dead-letters"] => get_only(method, ApiRoute::DeadLetters { stream }),
                    ["dead-letters", "redeliver"] if method == "POST" => {
                        Ok(ApiRoute::Redeliver { stream })
                    }
                    ["dead-letters", "redeliver"] => {
                        Err(ApiError::MethodNotAllowed { allow: "POST" })
                    }
                    ["tail"] if method == "GET" => Ok(ApiRoute::Tail { stream }),
                    ["tail"] => Err(ApiError::MethodNotAllowed { allow: "GET" }),
                    ["receipts", id, "recording"] => get_only(
                        method,
                        ApiRoute::Recording {
                            stream,
                            id: (*id).to_owned(),
                        },
                    ),
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
        assert_eq!(
            ok("GET", "/v1/streams/s/tail"),
            ApiRoute::Tail {
                stream: stream("s")
            }
        );
        assert_eq!(ok("GET", "/v1/streams/s/tail").auth(), Auth::Fetch);
        assert_eq!(
            refused("HEAD", "/v1/streams/s/tail"),
            Refusal::Fetch(ApiError::MethodNotAllowed { allow: "GET" })
        );
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
    fn redrive_routes() {
        assert_eq!(
            ok("POST", "/v1/streams/shop/quarantine/12/redrive"),
            ApiRoute::Redrive {
                stream: stream("shop"),
                seq: 12
            }
        );
        assert_eq!(
            ok("POST", "/v1/streams/default/quarantine/redrive"),
            ApiRoute::RedriveBulk {
                stream: stream("default")
            }
        );
        assert_eq!(
            ok("POST", "/v1/streams/s/quarantine/redrive").auth(),
            Auth::Fetch
        );
        let post = Refusal::Fetch(ApiError::MethodNotAllowed { allow: "POST" });
        for m in ["GET", "HEAD", "PUT", "DELETE"] {
            assert_eq!(refused(m, "/v1/streams/s/quarantine/3/redrive"), post);
            assert_eq!(refused(m, "/v1/streams/s/quarantine/redrive"), post);
        }
        for p in [
            "/v1/streams/s/quarantine/0/redrive",
            "/v1/streams/s/quarantine/x/redrive",
            "/v1/streams/s/quarantine/-1/redrive",
        ] {
            assert_eq!(
                refused("POST", p),
                Refusal::Fetch(ApiError::NoSuchItem),
                "{p}"
            );
        }
        assert_eq!(
            refused("POST", "/v1/streams/s/quarantine/3"),
            Refusal::Fetch(ApiError::NotFound)
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
        for p in ["/", "/console/app.js", "/console/app.css"] {
            assert_eq!(ok("GET", p), ApiRoute::Console { path: p });
            assert_eq!(ok("GET", p).auth(), Auth::None);
            assert_eq!(ok("HEAD", p), ApiRoute::Console { path: p });
            assert_eq!(
                refused("POST", p),
                Refusal::Public(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
            );
        }
        for p in [
            "/console/",
            "/console/x.js",
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
    fn recording_route() {
        assert_eq!(
            ok(
                "GET",
                "/v1/streams/default/receipts/LlmSmartCallRecord:ab/recording"
            ),
            ApiRoute::Recording {
                stream: stream("default"),
                id: "LlmSmartCallRecord:ab".into()
            }
        );
        assert_eq!(
            refused("POST", "/v1/streams/default/receipts/x/recording"),
            Refusal::Fetch(ApiError::MethodNotAllowed { allow: GET })
        );
        assert_eq!(
            refused("GET", "/v1/streams/default/receipts/x/other"),
            Refusal::Fetch(ApiError::NotFound)
        );
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
