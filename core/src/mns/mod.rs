//! MNS consumption mode: protocol pieces (signatures, XML, tokens, message bodies).
//!
//! The flow these pieces support (no I/O here; the caller supplies times and nonces):
//! 1. [`parse_mns_queues`] reads `MNS_QUEUES` into [`QueueBinding`]s; [`MnsEndpoints`] holds
//!    the fixed alicom MNS endpoint and the Dybaseapi endpoint.
//! 2. [`query_token_signed_query`] signs a `QueryTokenForMnsQueue` call (POP RPC signature,
//!    HMAC-SHA1); [`parse_query_token_response`] reads the temporary credentials
//!    ([`MnsToken`], refresh 2 minutes before `ExpireTime`).
//! 3. [`batch_receive_request`] / [`batch_delete_request`] build signed MNS REST requests.
//! 4. [`parse_messages`] reads received messages, [`parse_error`] / [`parse_batch_delete_error_body`]
//!    read failures ([`MnsErrorKind`] tells `MessageNotExist` / `QueueNotExist` / … apart).
//! 5. [`decode_message_body`] turns a `MessageBody` (base64 of JSON) into JSON text.

pub mod consume;
pub mod message_body;
pub mod mns_signature;
pub mod queue_config;
pub mod rpc_signature;
pub mod token;
pub mod xml;

/// Decode a `MessageBody`: base64-of-JSON, else raw JSON, else `not_json` keeping the bytes.
pub use message_body::{decode_message_body, BodyEncoding, DecodedBody};

/// MNS REST signing (`Authorization: MNS id:sig`) and the BatchReceive/BatchDelete requests.
pub use mns_signature::{
    authorization as mns_authorization, batch_delete_request, batch_receive_request,
    canonicalized_mns_headers, content_md5_dybaseapi, http_date, signature as mns_signature,
    string_to_sign as mns_string_to_sign, validate_queue_name, MnsCredentials, MnsRequest,
    MnsSignatureError, MAX_BATCH, MAX_WAIT_SECONDS, MNS_API_VERSION, XML_CONTENT_TYPE,
};

/// `MNS_QUEUES` parsing, MessageType names, app names, endpoint defaults.
pub use queue_config::{
    canonical_message_type, is_valid_app, parse_mns_queues, MnsEndpoints, QueueBinding,
    QueueConfigError, DEFAULT_DYBASEAPI_ENDPOINT, DEFAULT_MNS_ENDPOINT, MNS_MESSAGE_TYPES,
};

/// POP RPC signature (V2 / SignatureVersion 1.0) and the signed QueryTokenForMnsQueue query.
pub use rpc_signature::{
    canonicalized_query, iso8601_timestamp, percent_encode, query_token_signed_query,
    query_token_signed_query_with_method, sign as rpc_sign, signed_query as rpc_signed_query,
    string_to_sign as rpc_string_to_sign, QueryTokenParams, RpcSignatureError, DYBASEAPI_VERSION,
    QUERY_TOKEN_ACTION, QUERY_TOKEN_METHOD, QUERY_TOKEN_REGION,
};

/// QueryTokenForMnsQueue response: STS credentials and their refresh time.
pub use token::{
    parse_china_time_ms, parse_query_token_response, refresh_due_ms, MnsToken, QueryTokenResponse,
    TokenError, REFRESH_MARGIN_MS,
};

/// MNS XML: received messages, `<Error>`, BatchDelete body and per-entry errors.
pub use xml::{
    batch_delete_body, parse_batch_delete_error_body, parse_batch_delete_errors, parse_error,
    parse_messages, BatchDeleteErrorBody, BatchDeleteFailure, MnsError, MnsErrorKind,
    ReceivedMessage, XmlError, MNS_XMLNS,
};
