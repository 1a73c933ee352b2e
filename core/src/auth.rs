//! Shared-secret tokens: `PUSH_TOKEN` (in the push URL) and `FETCH_TOKEN` (bearer). Each may be a
//! comma-separated list (current,next) for rotation; each token at least 32 characters. Tokens
//! are compared in constant time over their SHA-256 digests.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const MIN_TOKEN_LEN: usize = 32;

/// The accepted tokens of one route, kept only as digests.
#[derive(Clone)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens)", self.digests.len())
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl TokenSet {
    /// Parses a secret. Errors say what is wrong without ever echoing the secret.
    pub fn parse(name: &str, secret: Option<&str>) -> Result<TokenSet, String> {
        let Some(secret) = secret.map(str::trim).filter(|s| !s.is_empty()) else {
            return Err(format!("{name} is not set"));
        };
        let mut digests = Vec::new();
        for (i, token) in secret.split(',').map(str::trim).enumerate() {
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(format!(
                    "{name}: token {} is shorter than {MIN_TOKEN_LEN} characters",
                    i + 1
                ));
            }
            digests.push(digest(token));
        }
        Ok(TokenSet { digests })
    }

    /// True when `presented` equals one of the tokens. Every token is compared, in constant time.
    pub fn accepts(&self, presented: &str) -> bool {
        let d = digest(presented);
        let mut ok = subtle::Choice::from(0u8);
        for t in &self.digests {
            ok |= t.ct_eq(&d);
        }
        bool::from(ok)
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn rotation_list() {
        let s = TokenSet::parse("PUSH_TOKEN", Some(&format!("{A}, {B}"))).expect("valid");
        assert!(s.accepts(A));
        assert!(s.accepts(B));
        assert!(!s.accepts("x"));
        assert!(!s.accepts(""));
        assert!(!s.accepts(&A[1..]));
    }

    #[test]
    fn weak_or_missing_fails_closed_without_echo() {
        let e = TokenSet::parse("PUSH_TOKEN", Some("short-secret")).expect_err("weak");
        assert!(e.contains("shorter than 32"));
        assert!(!e.contains("short-secret"));
        assert!(TokenSet::parse("PUSH_TOKEN", None).is_err());
        assert!(TokenSet::parse("PUSH_TOKEN", Some("  ")).is_err());
        assert!(TokenSet::parse("PUSH_TOKEN", Some(&format!("{A},"))).is_err());
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }
}
