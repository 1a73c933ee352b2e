//! Which recording addresses the archive may fetch (`RECORDING_HOSTS`), the R2 key of an archived
//! file, and the archive's retry schedule. A push must never make the Worker call an address the
//! operator did not allow: anything that does not pass [`HostPolicy::check`] is `refused` and
//! never contacted, and every redirect is checked again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The default `RECORDING_HOSTS`: Alibaba Cloud's OSS and service domains.
pub const DEFAULT_HOSTS: &str = ".aliyuncs.com";

/// At most this many redirects are followed, each one checked.
pub const MAX_REDIRECTS: u32 = 3;

/// The first retry of a failed download waits this long; each further retry doubles it.
pub const FIRST_BACKOFF_S: u32 = 30;
/// The longest wait between two download attempts.
pub const MAX_BACKOFF_S: u32 = 3_600;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `.example.com`: DNS names ending in it.
    Suffix(String),
    /// `files.example.com`: exactly that DNS name.
    Name(String),
    /// `127.0.0.1`, `[::1]`: exactly that address (only ever written by tests).
    Ip(IpAddr),
}

/// The parsed `RECORDING_HOSTS` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    patterns: Vec<Pattern>,
}

/// Why an address is refused (said in the job's `last_error`, never with the address itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotAUrl,
    Scheme,
    UserInfo,
    Host,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotAUrl => "not a URL",
            Refusal::Scheme => "scheme is not http or https",
            Refusal::UserInfo => "URL carries user info",
            Refusal::Host => "host not in RECORDING_HOSTS",
        }
    }
}

impl HostPolicy {
    /// Parses a comma-separated list; empty entries are skipped. An invalid entry is an error
    /// naming it (so `/healthz` can show it).
    pub fn parse(list: &str) -> Result<HostPolicy, String> {
        let mut patterns = Vec::new();
        for raw in list.split(',') {
            let p = raw.trim().to_ascii_lowercase();
            if p.is_empty() {
                continue;
            }
            if let Some(suffix) = p.strip_prefix('.') {
                if suffix.is_empty() || !is_dns_name(suffix) {
                    return Err(format!(
                        "RECORDING_HOSTS entry {p:?} is not a domain suffix"
                    ));
                }
                patterns.push(Pattern::Suffix(format!(".{suffix}")));
                continue;
            }
            let bare = p
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(&p);
            if let Ok(ip) = bare.parse::<IpAddr>() {
                patterns.push(Pattern::Ip(ip));
            } else if is_dns_name(&p) {
                patterns.push(Pattern::Name(p));
            } else {
                return Err(format!("RECORDING_HOSTS entry {p:?} is not a host"));
            }
        }
        Ok(HostPolicy { patterns })
    }

    /// Parses `text` with a real URL parser and checks scheme, user info and host. Returns the
    /// parsed URL to fetch.
    pub fn check(&self, text: &str) -> Result<Url, Refusal> {
        let url = Url::parse(text.trim()).map_err(|_| Refusal::NotAUrl)?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// Checks a redirect's `Location`, resolved against the address that answered with it.
    pub fn check_redirect(&self, from: &Url, location: &str) -> Result<Url, Refusal> {
        let url = from.join(location.trim()).map_err(|_| Refusal::NotAUrl)?;
        self.check_url(&url)?;
        Ok(url)
    }

    fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(Refusal::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::UserInfo);
        }
        let allowed = match url.host() {
            Some(Host::Domain(name)) => {
                let name = name.to_ascii_lowercase();
                // A DNS name that is really a number (the URL parser already turns `0x7f.1` and
                // friends into IPv4 addresses) never matches a name pattern.
                is_dns_name(&name)
                    && self.patterns.iter().any(|p| match p {
                        Pattern::Suffix(s) => name.len() > s.len() && name.ends_with(s.as_str()),
                        Pattern::Name(n) => *n == name,
                        Pattern::Ip(_) => false,
                    })
            }
            Some(Host::Ipv4(a)) => self.allows_ip(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => self.allows_ip(IpAddr::V6(a)),
            None => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::Host)
        }
    }

    /// Only an exact address pattern allows an IP literal; `::ffff:127.0.0.1` is not `127.0.0.1`.
    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::Ip(allowed) => same_ip(*allowed, ip),
            _ => false,
        })
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => x == y,
        (IpAddr::V6(x), IpAddr::V6(y)) => x == y,
        _ => false,
    }
}

/// Letters, digits, hyphens and dots, with at least one letter (so it is no address spelling).
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.parse::<Ipv4Addr>().is_err()
        && s.parse::<Ipv6Addr>().is_err()
}

/// The R2 key of a receipt's recording: `{stream}/{id}`.
pub fn object_key(stream: &str, id: &str) -> String {
    format!("{stream}/{id}")
}

/// Seconds before the next download attempt after `attempts` failed ones (1-based): 30, 60, …
/// capped at an hour.
pub fn backoff_s(attempts: u32) -> u32 {
    let s = crate::schedule::doubling_backoff(
        u64::from(FIRST_BACKOFF_S),
        u64::from(MAX_BACKOFF_S),
        attempts,
    );
    u32::try_from(s).unwrap_or(MAX_BACKOFF_S)
}

/// What one download's answer means for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadVerdict {
    /// 2xx: store it.
    Store,
    /// 3xx with a `Location`: check it and follow.
    Redirect,
    /// 403 or 404: the file is gone at the source; never retried.
    Gone,
    /// Anything else: retry with backoff until `ARCHIVE_RETRY_HOURS`.
    Retry,
}

pub fn download_verdict(status: u16) -> DownloadVerdict {
    match status {
        200..=299 => DownloadVerdict::Store,
        301 | 302 | 303 | 307 | 308 => DownloadVerdict::Redirect,
        403 | 404 | 410 => DownloadVerdict::Gone,
        _ => DownloadVerdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> HostPolicy {
        HostPolicy::parse(DEFAULT_HOSTS).unwrap()
    }

    #[test]
    fn documented_sample_hosts_pass() {
        let p = default();
        for ok in [
            "http://oss-cn-shanghai.aliyuncs.com/record/2021/x.wav",
            "https://aliyun-xxx.oss-cn-beijing.aliyuncs.com/a.mp3?Expires=1&Signature=x",
            "https://ICC-Records.OSS-CN-Hangzhou.ALIYUNCS.com/a.wav",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let p = default();
        let cases = [
            ("https://aliyuncs.com/x", Refusal::Host),
            ("https://evilaliyuncs.com/x", Refusal::Host),
            ("https://aliyuncs.com.evil.com/x", Refusal::Host),
            ("https://x.aliyuncs.com.evil.com/x", Refusal::Host),
            ("https://user:pw@x.aliyuncs.com/x", Refusal::UserInfo),
            ("https://user@x.aliyuncs.com/x", Refusal::UserInfo),
            ("ftp://x.aliyuncs.com/x", Refusal::Scheme),
            ("file:///etc/passwd", Refusal::Scheme),
            ("javascript:alert(1)", Refusal::Scheme),
            ("//x.aliyuncs.com/x", Refusal::NotAUrl),
            ("not a url", Refusal::NotAUrl),
            ("", Refusal::NotAUrl),
            ("http://127.0.0.1/x", Refusal::Host),
            ("http://169.254.169.254/latest/meta-data", Refusal::Host),
            ("http://[::1]/x", Refusal::Host),
            ("http://localhost/x", Refusal::Host),
        ];
        for (url, why) in cases {
            assert_eq!(p.check(url).unwrap_err(), why, "{url}");
        }
    }

    #[test]
    fn ip_literals_only_by_exact_pattern_whatever_the_spelling() {
        let p = HostPolicy::parse(".aliyuncs.com,127.0.0.1").unwrap();
        assert!(p.check("http://127.0.0.1:8123/rec.wav").is_ok());
        // Other spellings of 127.0.0.1 are parsed to the same address, so they pass too;
        // anything that is a different address is refused.
        assert!(p.check("http://2130706433/rec.wav").is_ok());
        assert!(p.check("http://0x7f.0.0.1/rec.wav").is_ok());
        // 127.1 is 127.0.0.1 spelled short.
        assert!(p.check("http://127.1/x.aliyuncs.com").is_ok());
        for other in [
            "http://[::ffff:127.0.0.1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://[::1]/x",
            "http://127.0.0.2/x",
            "http://0.0.0.0/x",
        ] {
            assert_eq!(p.check(other).unwrap_err(), Refusal::Host, "{other}");
        }
        // Without the pattern none of them pass.
        let d = default();
        for u in [
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(d.check(u).unwrap_err(), Refusal::Host, "{u}");
        }
        let v6 = HostPolicy::parse("[::1]").unwrap();
        assert!(v6.check("http://[::1]:9000/a").is_ok());
        assert_eq!(v6.check("http://127.0.0.1/a").unwrap_err(), Refusal::Host);
    }

    #[test]
    fn exact_names_and_list_parsing() {
        let p = HostPolicy::parse(" files.example.com , .aliyuncs.com,, ").unwrap();
        assert!(p.check("https://files.example.com/a").is_ok());
        assert!(p.check("https://FILES.example.com/a").is_ok());
        assert_eq!(
            p.check("https://x.files.example.com/a").unwrap_err(),
            Refusal::Host
        );
        assert!(HostPolicy::parse(".").is_err());
        assert!(HostPolicy::parse("exa mple.com").is_err());
        assert!(HostPolicy::parse("a/b").is_err());
        assert_eq!(HostPolicy::parse("").unwrap().patterns.len(), 0);
        assert_eq!(
            HostPolicy::parse("")
                .unwrap()
                .check("https://x.aliyuncs.com/")
                .unwrap_err(),
            Refusal::Host
        );
    }

    #[test]
    fn redirects_are_checked_again() {
        let p = default();
        let from = p.check("https://a.aliyuncs.com/x/y.wav").unwrap();
        assert_eq!(
            p.check_redirect(&from, "/z.wav").unwrap().as_str(),
            "https://a.aliyuncs.com/z.wav"
        );
        assert!(p.check_redirect(&from, "https://b.aliyuncs.com/z").is_ok());
        assert_eq!(
            p.check_redirect(&from, "http://169.254.169.254/")
                .unwrap_err(),
            Refusal::Host
        );
        assert_eq!(
            p.check_redirect(&from, "https://u@b.aliyuncs.com/")
                .unwrap_err(),
            Refusal::UserInfo
        );
        assert_eq!(
            p.check_redirect(&from, "gopher://b.aliyuncs.com/")
                .unwrap_err(),
            Refusal::Scheme
        );
    }

    #[test]
    fn schedule_and_verdicts() {
        assert!(backoff_s(1) <= 60);
        assert_eq!(backoff_s(2), 2 * backoff_s(1));
        assert_eq!(backoff_s(100), MAX_BACKOFF_S);
        assert_eq!(download_verdict(200), DownloadVerdict::Store);
        assert_eq!(download_verdict(206), DownloadVerdict::Store);
        assert_eq!(download_verdict(302), DownloadVerdict::Redirect);
        assert_eq!(download_verdict(404), DownloadVerdict::Gone);
        assert_eq!(download_verdict(403), DownloadVerdict::Gone);
        assert_eq!(download_verdict(500), DownloadVerdict::Retry);
        assert_eq!(download_verdict(429), DownloadVerdict::Retry);
        assert_eq!(
            object_key("s1", "LlmSmartCallRecord:ab"),
            "s1/LlmSmartCallRecord:ab"
        );
    }
}
