//! Racing a future against a deadline counted from the request's arrival.

use futures::future::{select, Either};
use std::time::Duration;
use worker::{Date, Delay};

/// `Some(output)` if `fut` finishes before `deadline_ms` (unix ms), else `None`.
pub async fn before<F: std::future::Future>(deadline_ms: i64, fut: F) -> Option<F::Output> {
    let left = deadline_ms - Date::now().as_millis() as i64;
    if left <= 0 {
        return None;
    }
    let delay = Delay::from(Duration::from_millis(left as u64));
    futures::pin_mut!(fut);
    match select(fut, delay).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}
