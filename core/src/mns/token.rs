//! The Dybaseapi `QueryTokenForMnsQueue` response: temporary STS credentials for one alicom
//! MNS queue, and when to refresh them.
//!
//! Shape (aliyun/alibabacloud-csharp-sdk `dybaseapi-20170525/core/Models/QueryTokenForMnsQueueResponseBody.cs`,
//! aliyun-java-sdk-dybaseapi `QueryTokenForMnsQueueResponseUnmarshaller.java`): `RequestId`,
//! `Code` (`"OK"` on success), `Message`, `MessageTokenDTO` {`AccessKeyId`, `AccessKeySecret`,
//! `SecurityToken`, `CreateTime`, `ExpireTime`}, all strings. `ExpireTime` is
//! `yyyy-MM-dd HH:mm:ss` in China time (the official Java helper parses it in Asia/Shanghai,
//! UTC+8 without DST); every official demo refreshes 2 minutes before it.

use std::fmt;

use serde::Deserialize;

/// Refresh this long before `ExpireTime` (as the official demos do).
pub const REFRESH_MARGIN_MS: i64 = 2 * 60 * 1000;

/// Why a token response was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The body is not a JSON object of the expected shape.
    #[error("mns token: invalid JSON response: {0}")]
    Json(String),
    /// The API answered with a `Code` other than `OK` (also POP gateway errors such as
    /// `InvalidAccessKeyId.NotFound` or `SignatureDoesNotMatch`).
    #[error("mns token: QueryTokenForMnsQueue failed: {code}: {message}{}", super::xml::request_suffix(.request_id.as_deref()))]
    Api {
        /// `Code`.
        code: String,
        /// `Message` (may be empty).
        message: String,
        /// `RequestId`, if any.
        request_id: Option<String>,
    },
    /// A required field is missing or empty; names it.
    #[error("mns token: response lacks {0}")]
    MissingField(&'static str),
    /// A time field is not `yyyy-MM-dd HH:mm:ss`.
    #[error("mns token: {field} is not yyyy-MM-dd HH:mm:ss: {value:?}")]
    InvalidTime {
        /// Field name.
        field: &'static str,
        /// Its text.
        value: String,
    },
}

/// Temporary credentials for MNS. `Debug` redacts the secret and the security token.
#[derive(Clone, PartialEq, Eq)]
pub struct MnsToken {
    /// Temporary AccessKeyId (`STS.…`).
    pub access_key_id: String,
    /// Temporary AccessKeySecret.
    pub access_key_secret: String,
    /// STS security token, sent as the `security-token` header.
    pub security_token: String,
    /// `CreateTime` as unix ms, if present and parseable.
    pub create_time_ms: Option<i64>,
    /// `ExpireTime` as unix ms.
    pub expire_time_ms: i64,
}

impl fmt::Debug for MnsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MnsToken")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("security_token", &"<redacted>")
            .field("create_time_ms", &self.create_time_ms)
            .field("expire_time_ms", &self.expire_time_ms)
            .finish()
    }
}

impl MnsToken {
    /// When to fetch a new token: `ExpireTime` minus 2 minutes.
    pub fn refresh_due_ms(&self) -> i64 {
        refresh_due_ms(self.expire_time_ms)
    }

    /// Whether the token can still be used at `now_ms` (before its refresh time).
    pub fn is_fresh(&self, now_ms: i64) -> bool {
        now_ms < self.refresh_due_ms()
    }
}

/// A successful response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTokenResponse {
    /// `RequestId`, if present.
    pub request_id: Option<String>,
    /// The credentials.
    pub token: MnsToken,
}

/// `expire_ms` minus 2 minutes (saturating).
pub fn refresh_due_ms(expire_ms: i64) -> i64 {
    expire_ms.saturating_sub(REFRESH_MARGIN_MS)
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "MessageTokenDTO")]
    token: Option<RawToken>,
}

#[derive(Deserialize)]
struct RawToken {
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "AccessKeySecret")]
    access_key_secret: Option<String>,
    #[serde(rename = "SecurityToken")]
    security_token: Option<String>,
    #[serde(rename = "CreateTime")]
    create_time: Option<String>,
    #[serde(rename = "ExpireTime")]
    expire_time: Option<String>,
}

/// Parses `yyyy-MM-dd HH:mm:ss` (surrounding whitespace tolerated) as China Standard Time
/// (UTC+08:00) into unix milliseconds.
pub fn parse_china_time_ms(value: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(value.trim(), &fmt).ok()?;
    let utc = t.assume_offset(time::macros::offset!(+8));
    i64::try_from(utc.unix_timestamp_nanos() / 1_000_000).ok()
}

fn required(value: Option<String>, name: &'static str) -> Result<String, TokenError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(TokenError::MissingField(name)),
    }
}

/// Parses a QueryTokenForMnsQueue JSON body. `Code` must be `OK`; otherwise the error carries
/// `Code`, `Message` and `RequestId`.
pub fn parse_query_token_response(body: &str) -> Result<QueryTokenResponse, TokenError> {
    let raw: RawResponse =
        serde_json::from_str(body).map_err(|e| TokenError::Json(e.to_string()))?;
    let code = raw.code.unwrap_or_default();
    if code != "OK" {
        if code.is_empty() && raw.message.is_none() {
            return Err(TokenError::MissingField("Code"));
        }
        return Err(TokenError::Api {
            code,
            message: raw.message.unwrap_or_default(),
            request_id: raw.request_id,
        });
    }
    let dto = raw
        .token
        .ok_or(TokenError::MissingField("MessageTokenDTO"))?;
    let expire_text = required(dto.expire_time, "ExpireTime")?;
    let expire_time_ms = parse_china_time_ms(&expire_text).ok_or(TokenError::InvalidTime {
        field: "ExpireTime",
        value: expire_text.clone(),
    })?;
    Ok(QueryTokenResponse {
        request_id: raw.request_id,
        token: MnsToken {
            access_key_id: required(dto.access_key_id, "AccessKeyId")?,
            access_key_secret: required(dto.access_key_secret, "AccessKeySecret")?,
            security_token: required(dto.security_token, "SecurityToken")?,
            create_time_ms: dto.create_time.as_deref().and_then(parse_china_time_ms),
            expire_time_ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // No official sample response exists (reference §5.1 [NF]); this body follows the field
    // list of the C#/Java SDK models above. 2024-05-01 10:30:00 +08:00 = 1714530600 s UTC
    // (python3: datetime(2024,5,1,2,30,tzinfo=timezone.utc).timestamp()).
    const OK_BODY: &str = r#"{
        "RequestId": "8906582E-6722-4A5B-A6E6-4F9E3A7F1234",
        "Code": "OK",
        "Message": "OK",
        "MessageTokenDTO": {
            "AccessKeyId": "STS.NTestAccessKeyId",
            "AccessKeySecret": "TestSecret",
            "SecurityToken": "CAISTestToken+/==",
            "CreateTime": "2024-05-01 09:30:00",
            "ExpireTime": "2024-05-01 10:30:00"
        }
    }"#;

    #[test]
    fn parses_success() {
        let r = parse_query_token_response(OK_BODY);
        let Ok(r) = r else {
            panic!("{r:?}");
        };
        assert_eq!(
            r.request_id.as_deref(),
            Some("8906582E-6722-4A5B-A6E6-4F9E3A7F1234")
        );
        assert_eq!(r.token.access_key_id, "STS.NTestAccessKeyId");
        assert_eq!(r.token.access_key_secret, "TestSecret");
        assert_eq!(r.token.security_token, "CAISTestToken+/==");
        assert_eq!(r.token.expire_time_ms, 1_714_530_600_000);
        assert_eq!(r.token.create_time_ms, Some(1_714_527_000_000));
    }

    #[test]
    fn refresh_two_minutes_before_expiry() {
        let Ok(r) = parse_query_token_response(OK_BODY) else {
            panic!("parse failed");
        };
        let due = r.token.refresh_due_ms();
        assert_eq!(due, 1_714_530_600_000 - 120_000);
        assert_eq!(refresh_due_ms(1_714_530_600_000), due);
        assert!(r.token.is_fresh(due - 1));
        assert!(!r.token.is_fresh(due));
        assert!(!r.token.is_fresh(r.token.expire_time_ms));
        assert_eq!(refresh_due_ms(i64::MIN), i64::MIN);
    }

    #[test]
    fn api_error_carries_code_and_message() {
        let body =
            r#"{"RequestId":"R1","Code":"isv.ACCOUNT_NOT_EXISTS","Message":"account not exists"}"#;
        assert_eq!(
            parse_query_token_response(body),
            Err(TokenError::Api {
                code: "isv.ACCOUNT_NOT_EXISTS".into(),
                message: "account not exists".into(),
                request_id: Some("R1".into()),
            })
        );
        // POP gateway error shape (HTTP 4xx): same Code/Message keys plus HostId.
        let pop = r#"{"RequestId":"R2","HostId":"dybaseapi.aliyuncs.com","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation."}"#;
        assert!(matches!(
            parse_query_token_response(pop),
            Err(TokenError::Api { code, .. }) if code == "SignatureDoesNotMatch"
        ));
    }

    #[test]
    fn missing_or_bad_fields() {
        assert!(matches!(
            parse_query_token_response("not json"),
            Err(TokenError::Json(_))
        ));
        assert!(matches!(
            parse_query_token_response("[]"),
            Err(TokenError::Json(_))
        ));
        assert_eq!(
            parse_query_token_response("{}"),
            Err(TokenError::MissingField("Code"))
        );
        assert_eq!(
            parse_query_token_response(r#"{"Code":"OK"}"#),
            Err(TokenError::MissingField("MessageTokenDTO"))
        );
        let no_token = OK_BODY.replace("\"CAISTestToken+/==\"", "\"\"");
        assert_eq!(
            parse_query_token_response(&no_token),
            Err(TokenError::MissingField("SecurityToken"))
        );
        let bad_time = OK_BODY.replace("2024-05-01 10:30:00", "2024-05-01T10:30:00Z");
        assert_eq!(
            parse_query_token_response(&bad_time),
            Err(TokenError::InvalidTime {
                field: "ExpireTime",
                value: "2024-05-01T10:30:00Z".into()
            })
        );
        let bad_create = OK_BODY.replace("2024-05-01 09:30:00", "soon");
        let Ok(r) = parse_query_token_response(&bad_create) else {
            panic!("CreateTime is informational only");
        };
        assert_eq!(r.token.create_time_ms, None);
    }

    #[test]
    fn china_time_parsing() {
        assert_eq!(parse_china_time_ms("1970-01-01 08:00:00"), Some(0));
        assert_eq!(
            parse_china_time_ms(" 2024-05-01 10:30:00 "),
            Some(1_714_530_600_000)
        );
        assert_eq!(parse_china_time_ms("2024-02-30 00:00:00"), None);
        assert_eq!(parse_china_time_ms("2024-05-01 10:30"), None);
        assert_eq!(parse_china_time_ms(""), None);
    }

    #[test]
    fn debug_redacts_secrets() {
        let Ok(r) = parse_query_token_response(OK_BODY) else {
            panic!("parse failed");
        };
        let dbg = format!("{:?}", r.token);
        assert!(!dbg.contains("TestSecret"));
        assert!(!dbg.contains("CAISTestToken"));
        assert!(dbg.contains("STS.NTestAccessKeyId"));
    }

    #[test]
    fn display_texts() {
        let e = TokenError::Api {
            code: "X".into(),
            message: "y".into(),
            request_id: Some("R".into()),
        };
        assert_eq!(
            e.to_string(),
            "mns token: QueryTokenForMnsQueue failed: X: y (request R)"
        );
    }
}
