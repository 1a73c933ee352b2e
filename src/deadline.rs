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

/// Like [`before`], but the work is never thrown away: `fut` runs to its end under
/// `ctx.wait_until` whatever the deadline decides (a body fully received is always committed;
/// the deadline only decides the answer).
pub async fn before_keep_running<F>(
    ctx: &worker::Context,
    deadline_ms: i64,
    fut: F,
) -> Option<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let (tx, rx) = futures::channel::oneshot::channel();
    ctx.wait_until(async move {
        let _ = tx.send(fut.await);
    });
    match before(deadline_ms, rx).await {
        Some(Ok(out)) => Some(out),
        _ => None,
    }
}
