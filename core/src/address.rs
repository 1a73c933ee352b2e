//! Names in URLs: push addresses `/icc/{product}[/{app}]`, streams, consumers.

use crate::message_type::Product;

/// The stream of a product's general address.
pub const DEFAULT_STREAM: &str = "default";

fn is_name(s: &str, extra: &[u8]) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || extra.contains(&b))
}

/// An app name: 1–64 of `[A-Za-z0-9_-]`, not `default` in any letter case (`DEFAULT` would
/// otherwise be a second stream beside the general address's).
pub fn is_app(s: &str) -> bool {
    is_name(s, &[]) && !s.eq_ignore_ascii_case(DEFAULT_STREAM)
}

/// A stream name: `default` or an app name.
pub fn is_stream(s: &str) -> bool {
    s == DEFAULT_STREAM || is_app(s)
}

/// A consumer name: `[A-Za-z0-9_.-]{1,64}`.
pub fn is_consumer(s: &str) -> bool {
    is_name(s, b".")
}

/// A parsed push address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAddress {
    pub product: Product,
    pub app: Option<String>,
}

impl PushAddress {
    /// The stream this address writes.
    pub fn stream(&self) -> &str {
        self.app.as_deref().unwrap_or(DEFAULT_STREAM)
    }

    /// The address as logged and quarantined: the path, never the query (it holds the token).
    pub fn path(&self) -> String {
        match &self.app {
            Some(app) => format!("/icc/{}/{}", self.product.as_str(), app),
            None => format!("/icc/{}", self.product.as_str()),
        }
    }

    /// Parses the path after `/icc/`. `apps`, when configured, is the allowlist of app names.
    pub fn parse(rest: &str, apps: Option<&[String]>) -> Option<PushAddress> {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut parts = rest.split('/');
        let product = Product::from_path(parts.next()?)?;
        let app = match parts.next() {
            None => None,
            Some(a) if is_app(a) => Some(a.to_owned()),
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        if let (Some(app), Some(list)) = (&app, apps) {
            if !list.iter().any(|a| a == app) {
                return None;
            }
        }
        Some(PushAddress { product, app })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = PushAddress::parse("llm", None).expect("general");
        assert_eq!((a.product, a.stream()), (Product::Llm, "default"));
        let b = PushAddress::parse("bot/shop-1", None).expect("app");
        assert_eq!(
            (b.stream(), b.path().as_str()),
            ("shop-1", "/icc/bot/shop-1")
        );
        assert!(PushAddress::parse("llm/default", None).is_none());
        for other_case in ["DEFAULT", "Default", "deFAULT"] {
            assert!(
                PushAddress::parse(&format!("llm/{other_case}"), None).is_none(),
                "{other_case}"
            );
            assert!(!is_stream(other_case), "{other_case}");
        }
        assert!(PushAddress::parse("sms", None).is_none());
        assert!(PushAddress::parse("llm/a/b", None).is_none());
        assert!(PushAddress::parse("llm/a%20b", None).is_none());
        assert!(PushAddress::parse("llm/' or 1=1", None).is_none());
        assert!(PushAddress::parse(&format!("llm/{}", "a".repeat(65)), None).is_none());
        let apps = vec!["shop".to_owned()];
        assert!(PushAddress::parse("llm/shop", Some(&apps)).is_some());
        assert!(PushAddress::parse("llm/shpo", Some(&apps)).is_none());
        assert!(PushAddress::parse("llm", Some(&apps)).is_some());
    }

    #[test]
    fn names() {
        assert!(is_consumer("etl.v2"));
        assert!(!is_app("etl.v2"));
        assert!(is_stream("default"));
        assert!(!is_consumer(""));
    }
}
