//! Answer bodies: the `{code,msg}` shape ICC expects on `/icc`, and the
//! `{"error":{"code","message"}}` shape of the fetch API.

use serde::Serialize;

/// The body ICC counts as success (the console's *Test* checks for exactly this).
pub const SUCCESS: &str = r#"{"code":0,"msg":"Success"}"#;

#[derive(Serialize)]
struct Icc<'a> {
    code: u16,
    msg: &'a str,
}

/// `{"code":<code>,"msg":<msg>}`, for every answer on `/icc`.
pub fn icc(code: u16, msg: &str) -> String {
    if code == 0 {
        return SUCCESS.to_owned();
    }
    serde_json::to_string(&Icc { code, msg }).unwrap_or_else(|_| SUCCESS.replace('0', "500"))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: &'a str,
    message: &'a str,
}

/// `{"error":{"code":<code>,"message":<message>}}`, for every error of the fetch API.
pub fn fetch_error(code: &str, message: &str) -> String {
    serde_json::to_string(&ErrorBody {
        error: ErrorInner { code, message },
    })
    .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"internal"}}"#.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(icc(0, "whatever"), r#"{"code":0,"msg":"Success"}"#);
        assert_eq!(
            icc(401, "unauthorized"),
            r#"{"code":401,"msg":"unauthorized"}"#
        );
        assert_eq!(
            fetch_error("cursor_ahead", "after \"9\" > head"),
            r#"{"error":{"code":"cursor_ahead","message":"after \"9\" > head"}}"#
        );
    }
}
