//! MNS (Simple Message Queue) REST request signing and the header lists of the two calls the
//! consumer makes: BatchReceiveMessage and BatchDeleteMessage.
//!
//! Documented ("Sign requests", alibabacloud.com/help/doc-detail/27487.htm):
//! `Authorization: MNS <AccessKeyId>:<Signature>` with
//! `Signature = base64(HMAC-SHA1(AccessKeySecret, VERB + "\n" + Content-MD5 + "\n" +
//! Content-Type + "\n" + Date + "\n" + CanonicalizedMNSHeaders + CanonicalizedResource))`,
//! where CanonicalizedMNSHeaders are the `x-mns-*` headers, lower-cased, sorted, each `k:v\n`,
//! and CanonicalizedResource is the request path plus query.
//!
//! Client behaviour copied from aliyun/aliyun-openapi-python-sdk
//! `aliyun-python-sdk-dybaseapi/aliyunsdkdybaseapi/mns/mns_client.py` (the MNS client shipped for
//! alicom receipts): `x-mns-version: 2015-06-06`; for a body, `content-type:
//! text/xml;charset=UTF-8` and `content-md5 = base64(hex(md5(body)))`; with STS credentials the
//! token goes in an unsigned `security-token` header and the temporary AccessKeyId/secret sign.
//! The `Host` header is not signed and is left to the HTTP client.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha1::Sha1;

use super::xml::{batch_delete_body, XmlError};

/// MNS API version sent in `x-mns-version`.
pub const MNS_API_VERSION: &str = "2015-06-06";
/// Content type of XML request bodies (as the dybaseapi Python client sends it).
pub const XML_CONTENT_TYPE: &str = "text/xml;charset=UTF-8";
/// BatchReceiveMessage / BatchDeleteMessage accept at most this many messages / handles.
pub const MAX_BATCH: usize = 16;
/// Longest long-poll wait MNS accepts, seconds.
pub const MAX_WAIT_SECONDS: u32 = 30;

/// Why an MNS request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MnsSignatureError {
    /// A required input was empty; names the input.
    #[error("mns request: {0} must not be empty")]
    EmptyField(&'static str),
    /// The queue name is not 1–256 of `[A-Za-z0-9_-]` (it is put in the request path).
    #[error("mns request: invalid queue name {0:?} (expected 1-256 of A-Z a-z 0-9 _ -)")]
    InvalidQueueName(String),
    /// `numOfMessages` outside 1..=16.
    #[error("mns request: batch size {0} outside 1..={MAX_BATCH}")]
    BatchSizeOutOfRange(usize),
    /// `waitseconds` above 30.
    #[error("mns request: waitseconds {0} above {MAX_WAIT_SECONDS}")]
    WaitSecondsOutOfRange(u32),
    /// The unix time cannot be formatted as an HTTP date.
    #[error("mns request: unix time {0} cannot be formatted")]
    DateOutOfRange(i64),
    /// A header value contains CR or LF.
    #[error("mns request: header {0} contains a line break")]
    InvalidHeaderValue(&'static str),
    /// The HMAC key was rejected (not expected for HMAC-SHA1; kept so nothing panics).
    #[error("mns request: invalid HMAC key")]
    InvalidKey,
    /// Building the XML body failed.
    #[error("mns request: {0}")]
    Body(#[from] XmlError),
}

/// Credentials that sign MNS requests: usually the temporary ones from QueryTokenForMnsQueue.
#[derive(Debug, Clone, Copy)]
pub struct MnsCredentials<'a> {
    /// AccessKeyId (temporary `STS.…` id for alicom queues).
    pub access_key_id: &'a str,
    /// AccessKeySecret.
    pub access_key_secret: &'a str,
    /// STS security token; sent as the unsigned `security-token` header when present.
    pub security_token: Option<&'a str>,
}

/// A request ready to send: method, path+query (relative to the MNS endpoint), headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnsRequest {
    /// `GET` or `DELETE`.
    pub method: &'static str,
    /// Path and query, e.g. `/queues/q/messages?numOfMessages=16&waitseconds=10`.
    /// This is also the signed CanonicalizedResource.
    pub path_and_query: String,
    /// Headers to send, in a stable order (`Host`/`Content-Length` are left to the client).
    pub headers: Vec<(String, String)>,
    /// Request body (XML for BatchDeleteMessage).
    pub body: Option<String>,
}

impl MnsRequest {
    /// The value of a header (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Checks that a queue name is safe to put in a request path: 1–256 characters of
/// `[A-Za-z0-9_-]` (MNS names are letters, digits and `-`; `_` is tolerated).
pub fn validate_queue_name(name: &str) -> Result<(), MnsSignatureError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(MnsSignatureError::InvalidQueueName(name.to_string()))
    }
}

/// RFC 1123 GMT date for the `Date` header, e.g. `Thu, 09 Jul 2015 03:01:34 GMT`.
pub fn http_date(unix_secs: i64) -> Result<String, MnsSignatureError> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .map_err(|_| MnsSignatureError::DateOutOfRange(unix_secs))?;
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let s = t
        .format(&fmt)
        .map_err(|_| MnsSignatureError::DateOutOfRange(unix_secs))?;
    if s.len() != 29 {
        return Err(MnsSignatureError::DateOutOfRange(unix_secs));
    }
    Ok(s)
}

/// `Content-MD5` as the dybaseapi Python client computes it: base64 of the **hex** MD5 digest
/// (`base64.b64encode(hashlib.md5(body).hexdigest())`), not of the raw digest.
pub fn content_md5_dybaseapi(body: &[u8]) -> String {
    let digest = Md5::digest(body);
    base64::engine::general_purpose::STANDARD.encode(hex::encode(digest))
}

/// CanonicalizedMNSHeaders: headers whose lower-cased name starts with `x-mns-`, lower-cased,
/// sorted by name, each `name:value\n`.
pub fn canonicalized_mns_headers(headers: &[(&str, &str)]) -> String {
    let mut mns: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .filter(|(k, _)| k.starts_with("x-mns-"))
        .collect();
    mns.sort();
    let mut out = String::new();
    for (k, v) in mns {
        out.push_str(&k);
        out.push(':');
        out.push_str(v);
        out.push('\n');
    }
    out
}

/// The MNS string-to-sign.
pub fn string_to_sign(
    verb: &str,
    content_md5: &str,
    content_type: &str,
    date: &str,
    headers: &[(&str, &str)],
    canonicalized_resource: &str,
) -> String {
    format!(
        "{verb}\n{content_md5}\n{content_type}\n{date}\n{}{canonicalized_resource}",
        canonicalized_mns_headers(headers)
    )
}

/// base64(HMAC-SHA1(secret, string_to_sign)). Note: the key is the secret itself (no `&`).
pub fn signature(
    access_key_secret: &str,
    string_to_sign: &str,
) -> Result<String, MnsSignatureError> {
    if access_key_secret.is_empty() {
        return Err(MnsSignatureError::EmptyField("access_key_secret"));
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(access_key_secret.as_bytes())
        .map_err(|_| MnsSignatureError::InvalidKey)?;
    mac.update(string_to_sign.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// `MNS <AccessKeyId>:<Signature>`.
pub fn authorization(
    access_key_id: &str,
    access_key_secret: &str,
    string_to_sign: &str,
) -> Result<String, MnsSignatureError> {
    if access_key_id.is_empty() {
        return Err(MnsSignatureError::EmptyField("access_key_id"));
    }
    Ok(format!(
        "MNS {access_key_id}:{}",
        signature(access_key_secret, string_to_sign)?
    ))
}

fn no_line_breaks(name: &'static str, value: &str) -> Result<(), MnsSignatureError> {
    if value.contains(['\r', '\n']) {
        Err(MnsSignatureError::InvalidHeaderValue(name))
    } else {
        Ok(())
    }
}

/// Signs a request and returns its full header list.
fn build(
    creds: &MnsCredentials<'_>,
    method: &'static str,
    path_and_query: String,
    body: Option<String>,
    unix_secs: i64,
) -> Result<MnsRequest, MnsSignatureError> {
    if creds.access_key_id.is_empty() {
        return Err(MnsSignatureError::EmptyField("access_key_id"));
    }
    no_line_breaks("access_key_id", creds.access_key_id)?;
    if let Some(token) = creds.security_token {
        if token.is_empty() {
            return Err(MnsSignatureError::EmptyField("security_token"));
        }
        no_line_breaks("security-token", token)?;
    }
    let date = http_date(unix_secs)?;
    let (content_md5, content_type) = match &body {
        Some(b) => (
            content_md5_dybaseapi(b.as_bytes()),
            XML_CONTENT_TYPE.to_string(),
        ),
        None => (String::new(), String::new()),
    };
    let mns_headers = [("x-mns-version", MNS_API_VERSION)];
    let to_sign = string_to_sign(
        method,
        &content_md5,
        &content_type,
        &date,
        &mns_headers,
        &path_and_query,
    );
    let auth = authorization(creds.access_key_id, creds.access_key_secret, &to_sign)?;

    let mut headers: Vec<(String, String)> = Vec::with_capacity(6);
    if body.is_some() {
        headers.push(("Content-Type".into(), content_type));
        headers.push(("Content-MD5".into(), content_md5));
    }
    headers.push(("Date".into(), date));
    headers.push(("x-mns-version".into(), MNS_API_VERSION.into()));
    headers.push(("Authorization".into(), auth));
    if let Some(token) = creds.security_token {
        headers.push(("security-token".into(), token.to_string()));
    }
    Ok(MnsRequest {
        method,
        path_and_query,
        headers,
        body,
    })
}

/// BatchReceiveMessage: `GET /queues/{q}/messages?numOfMessages=N[&waitseconds=W]`
/// (N in 1..=16; W in 0..=30, `None` = the queue's PollingWaitSeconds).
pub fn batch_receive_request(
    creds: &MnsCredentials<'_>,
    queue_name: &str,
    num_of_messages: usize,
    wait_seconds: Option<u32>,
    unix_secs: i64,
) -> Result<MnsRequest, MnsSignatureError> {
    validate_queue_name(queue_name)?;
    if !(1..=MAX_BATCH).contains(&num_of_messages) {
        return Err(MnsSignatureError::BatchSizeOutOfRange(num_of_messages));
    }
    let mut path = format!("/queues/{queue_name}/messages?numOfMessages={num_of_messages}");
    if let Some(w) = wait_seconds {
        if w > MAX_WAIT_SECONDS {
            return Err(MnsSignatureError::WaitSecondsOutOfRange(w));
        }
        path.push_str(&format!("&waitseconds={w}"));
    }
    build(creds, "GET", path, None, unix_secs)
}

/// BatchDeleteMessage: `DELETE /queues/{q}/messages` with the `<ReceiptHandles>` XML body
/// (1..=16 handles), `Content-Type: text/xml;charset=UTF-8` and the dybaseapi-style
/// `Content-MD5`.
pub fn batch_delete_request(
    creds: &MnsCredentials<'_>,
    queue_name: &str,
    receipt_handles: &[&str],
    unix_secs: i64,
) -> Result<MnsRequest, MnsSignatureError> {
    validate_queue_name(queue_name)?;
    if !(1..=MAX_BATCH).contains(&receipt_handles.len()) {
        return Err(MnsSignatureError::BatchSizeOutOfRange(
            receipt_handles.len(),
        ));
    }
    let body = batch_delete_body(receipt_handles)?;
    build(
        creds,
        "DELETE",
        format!("/queues/{queue_name}/messages"),
        Some(body),
        unix_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Documented example: "How do I obtain the signature string of an API request?"
    // (alibabacloud.com/help/en/message-service/latest/how-do-i-obtain-the-signature-string-of-an-api-request):
    //   GET /MyQueue, Date: Thu, 09 Jul 2015 03:01:34 GMT, x-mns-version:2015-06-06,
    //   accessId TestAccessID, accesskey TestAccessSecret -> "uwx3yeWoILzgmvesW0BQSgfM****"
    // The page masks the last four characters. The full value below was computed with python3
    // on this machine:
    //   base64.b64encode(hmac.new(b"TestAccessSecret",
    //     b"GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n/MyQueue",
    //     hashlib.sha1).digest())  ->  b'uwx3yeWoILzgmvesW0BQSgfM7b8='
    #[test]
    fn documented_get_queue_signature() {
        let sts = string_to_sign(
            "GET",
            "",
            "",
            "Thu, 09 Jul 2015 03:01:34 GMT",
            &[("x-mns-version", "2015-06-06")],
            "/MyQueue",
        );
        assert_eq!(
            sts,
            "GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n/MyQueue"
        );
        let sig = signature("TestAccessSecret", &sts);
        assert!(matches!(&sig, Ok(s) if s.starts_with("uwx3yeWoILzgmvesW0BQSgfM")));
        assert_eq!(sig.as_deref(), Ok("uwx3yeWoILzgmvesW0BQSgfM7b8="));
        assert_eq!(
            authorization("TestAccessID", "TestAccessSecret", &sts).as_deref(),
            Ok("MNS TestAccessID:uwx3yeWoILzgmvesW0BQSgfM7b8=")
        );
    }

    #[test]
    fn http_date_is_rfc1123_gmt() {
        // 1436410894 = 2015-07-09T03:01:34Z, the date of the documented example.
        assert_eq!(
            http_date(1_436_410_894).as_deref(),
            Ok("Thu, 09 Jul 2015 03:01:34 GMT")
        );
        assert_eq!(http_date(0).as_deref(), Ok("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert!(http_date(i64::MAX).is_err());
    }

    #[test]
    fn canonicalized_headers_lowercase_sort_and_filter() {
        let h = [
            ("X-MNS-Version", "2015-06-06"),
            ("Date", "x"),
            ("x-mns-date", "d"),
            ("security-token", "t"),
            ("Content-Type", "text/xml"),
        ];
        assert_eq!(
            canonicalized_mns_headers(&h),
            "x-mns-date:d\nx-mns-version:2015-06-06\n"
        );
        assert_eq!(canonicalized_mns_headers(&[]), "");
    }

    #[test]
    fn content_md5_is_base64_of_hex_digest() {
        // python3: base64.b64encode(hashlib.md5(b"").hexdigest().encode())
        assert_eq!(
            content_md5_dybaseapi(b""),
            "ZDQxZDhjZDk4ZjAwYjIwNGU5ODAwOTk4ZWNmODQyN2U="
        );
    }

    const STS: MnsCredentials<'static> = MnsCredentials {
        access_key_id: "STS.testid",
        access_key_secret: "testsecret",
        security_token: Some("tok+en/=="),
    };

    // Independent vector (python3 on this machine, mirroring mns_client.get_signature):
    //   sts = "GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n"
    //         "/queues/Alicom-Queue-1234-VoiceReportAiccs/messages?numOfMessages=16&waitseconds=10"
    //   base64.b64encode(hmac.new(b"testsecret", sts.encode(), hashlib.sha1).digest())
    #[test]
    fn batch_receive_request_headers_and_signature() {
        let r = batch_receive_request(
            &STS,
            "Alicom-Queue-1234-VoiceReportAiccs",
            16,
            Some(10),
            1_436_410_894,
        );
        let Ok(r) = r else {
            panic!("request not built: {r:?}");
        };
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.path_and_query,
            "/queues/Alicom-Queue-1234-VoiceReportAiccs/messages?numOfMessages=16&waitseconds=10"
        );
        assert_eq!(r.body, None);
        assert_eq!(r.header("date"), Some("Thu, 09 Jul 2015 03:01:34 GMT"));
        assert_eq!(r.header("x-mns-version"), Some("2015-06-06"));
        assert_eq!(r.header("security-token"), Some("tok+en/=="));
        assert_eq!(r.header("content-md5"), None);
        assert_eq!(r.header("content-type"), None);
        assert_eq!(
            r.header("authorization"),
            Some("MNS STS.testid:2rI9tHCY+y9S/y2ZZBS27m5FvgU=")
        );
    }

    #[test]
    fn batch_receive_without_wait_and_without_token() {
        let creds = MnsCredentials {
            security_token: None,
            ..STS
        };
        let r = batch_receive_request(&creds, "q-1", 1, None, 0);
        let Ok(r) = r else {
            panic!("request not built: {r:?}");
        };
        assert_eq!(r.path_and_query, "/queues/q-1/messages?numOfMessages=1");
        assert_eq!(r.header("security-token"), None);
        assert_eq!(r.headers.len(), 3);
    }

    #[test]
    fn batch_receive_validation() {
        assert_eq!(
            batch_receive_request(&STS, "q", 0, None, 0),
            Err(MnsSignatureError::BatchSizeOutOfRange(0))
        );
        assert_eq!(
            batch_receive_request(&STS, "q", 17, None, 0),
            Err(MnsSignatureError::BatchSizeOutOfRange(17))
        );
        assert_eq!(
            batch_receive_request(&STS, "q", 1, Some(31), 0),
            Err(MnsSignatureError::WaitSecondsOutOfRange(31))
        );
        for bad in ["", "a/b", "a?b", "a b", "ä", "../x"] {
            assert_eq!(
                batch_receive_request(&STS, bad, 1, None, 0),
                Err(MnsSignatureError::InvalidQueueName(bad.to_string()))
            );
        }
        let no_id = MnsCredentials {
            access_key_id: "",
            ..STS
        };
        assert_eq!(
            batch_receive_request(&no_id, "q", 1, None, 0),
            Err(MnsSignatureError::EmptyField("access_key_id"))
        );
        let no_secret = MnsCredentials {
            access_key_secret: "",
            ..STS
        };
        assert_eq!(
            batch_receive_request(&no_secret, "q", 1, None, 0),
            Err(MnsSignatureError::EmptyField("access_key_secret"))
        );
        let bad_token = MnsCredentials {
            security_token: Some("a\r\nX-Evil: 1"),
            ..STS
        };
        assert_eq!(
            batch_receive_request(&bad_token, "q", 1, None, 0),
            Err(MnsSignatureError::InvalidHeaderValue("security-token"))
        );
    }

    // Independent vector (python3 on this machine):
    //   body = '<?xml version="1.0" encoding="UTF-8"?><ReceiptHandles xmlns="http://mns.aliyuncs.com/doc/v1/">'
    //          '<ReceiptHandle>1-ODU4OTkzNDU5My0xNDM1MTk3NjAwLTItNg==</ReceiptHandle>'
    //          '<ReceiptHandle>1-ODU4OTkzNDU5NC0xNDM1MTk3NjAwLTItNg==</ReceiptHandle></ReceiptHandles>'
    //   md5 = base64.b64encode(hashlib.md5(body.encode()).hexdigest().encode())
    //   sts = "DELETE\n" + md5 + "\ntext/xml;charset=UTF-8\nThu, 09 Jul 2015 03:01:34 GMT\n"
    //         "x-mns-version:2015-06-06\n/queues/Alicom-Queue-1234-VoiceReportAiccs/messages"
    //   base64.b64encode(hmac.new(b"testsecret", sts.encode(), hashlib.sha1).digest())
    // (receipt handles taken from the BatchDeleteMessage doc's request example)
    #[test]
    fn batch_delete_request_headers_and_signature() {
        let r = batch_delete_request(
            &STS,
            "Alicom-Queue-1234-VoiceReportAiccs",
            &[
                "1-ODU4OTkzNDU5My0xNDM1MTk3NjAwLTItNg==",
                "1-ODU4OTkzNDU5NC0xNDM1MTk3NjAwLTItNg==",
            ],
            1_436_410_894,
        );
        let Ok(r) = r else {
            panic!("request not built: {r:?}");
        };
        assert_eq!(r.method, "DELETE");
        assert_eq!(
            r.path_and_query,
            "/queues/Alicom-Queue-1234-VoiceReportAiccs/messages"
        );
        assert_eq!(
            r.body.as_deref(),
            Some("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ReceiptHandles xmlns=\"http://mns.aliyuncs.com/doc/v1/\"><ReceiptHandle>1-ODU4OTkzNDU5My0xNDM1MTk3NjAwLTItNg==</ReceiptHandle><ReceiptHandle>1-ODU4OTkzNDU5NC0xNDM1MTk3NjAwLTItNg==</ReceiptHandle></ReceiptHandles>")
        );
        assert_eq!(r.header("content-type"), Some("text/xml;charset=UTF-8"));
        assert_eq!(
            r.header("content-md5"),
            Some("NzVkMTVlYTBlMTA1NmEzOTM5MzVlMmJiNDk4MzY4Njg=")
        );
        assert_eq!(r.header("security-token"), Some("tok+en/=="));
        assert_eq!(
            r.header("authorization"),
            Some("MNS STS.testid:VDy3Ali1nCEQJHUZ5FAhkTTiXfc=")
        );
    }

    #[test]
    fn batch_delete_validation() {
        assert_eq!(
            batch_delete_request(&STS, "q", &[], 0),
            Err(MnsSignatureError::BatchSizeOutOfRange(0))
        );
        let many = ["h"; 17];
        assert_eq!(
            batch_delete_request(&STS, "q", &many, 0),
            Err(MnsSignatureError::BatchSizeOutOfRange(17))
        );
        assert!(matches!(
            batch_delete_request(&STS, "q", &[""], 0),
            Err(MnsSignatureError::Body(_))
        ));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            MnsSignatureError::BatchSizeOutOfRange(17).to_string(),
            "mns request: batch size 17 outside 1..=16"
        );
    }
}
