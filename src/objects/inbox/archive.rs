//! The recording archive, object side: jobs are added by the commit transaction (one per stored
//! receipt with a `recording_url`), run by the object's alarm (`Work::Archive`) at most
//! `ARCHIVE_CONCURRENCY` at once, each streamed from an allowed host into R2 at `{stream}/{id}`
//! with its size and SHA-256 computed on the way. Rules: `icc_core::recording_archive` and
//! `icc_core::recording_url`. A job is `archived` only after R2 confirmed the whole object.

use super::schema::{self, int, scalar, text};
use super::Inbox;
use futures::future::{join_all, select, Either};
use futures::StreamExt;
use icc_core::recording_archive::{self, ArchiveConfig, Status, StreamHasher};
use icc_core::recording_url::{self, DownloadVerdict, HostPolicy, MAX_REDIRECTS};
use icc_core::schedule::Work;
use icc_core::vendor_time::format_utc_ms;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use worker::{
    Bucket, Date, Delay, Env, Fetch, FixedLengthStream, HttpMetadata, Request, RequestInit,
    RequestRedirect, Result, SqlStorage,
};

/// The R2 binding of the archive.
pub const BUCKET: &str = "RECORDINGS";

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

pub fn config(env: &Env) -> ArchiveConfig {
    ArchiveConfig::from_lookup(&|name: &str| env.var(name).ok().map(|v| v.to_string()))
}

/// A job due now, with its receipt's address.
#[derive(Deserialize)]
struct JobRow {
    id: String,
    attempts: f64,
    created_at_ms: f64,
    url: Option<String>,
}

/// How one attempt ended.
enum Attempt {
    Archived { size: u64, sha256: String },
    Final(Status, &'static str),
    Retry(String),
}

/// One job's recording state, as read with a receipt.
#[derive(Deserialize)]
pub(super) struct RecordingRow {
    pub status: String,
    pub size: Option<f64>,
    pub sha256: Option<String>,
    pub archived_at_ms: Option<f64>,
}

impl RecordingRow {
    pub fn json(&self) -> String {
        recording_archive::recording_json(
            &self.status,
            self.size.map(|s| s as i64),
            self.sha256.as_deref(),
            self.archived_at_ms
                .map(|ms| format_utc_ms(ms as i64))
                .as_deref(),
        )
    }
}

impl Inbox {
    /// Inside the commit transaction: a job for every receipt stored by it (seq above
    /// `head_before`) whose normalized form has a `recording_url`.
    pub(super) fn add_archive_jobs(
        &self,
        sql: &SqlStorage,
        head_before: i64,
        at_ms: i64,
    ) -> Result<()> {
        if !config(&self.env).enabled {
            return Ok(());
        }
        sql.exec(
            "INSERT INTO recordings(id, created_at_ms, next_at_ms)
             SELECT id, ?2, ?2 FROM receipts
             WHERE seq > ?1 AND norm->>'recording_url' IS NOT NULL
             ON CONFLICT(id) DO NOTHING",
            vec![int(head_before), int(at_ms)],
        )?;
        Ok(())
    }

    /// After a commit: run pending jobs now (moves the archive's due time earlier if needed).
    pub(super) async fn archive_soon(&self) {
        if !config(&self.env).enabled {
            return;
        }
        let r = async {
            let pending = scalar(
                &self.sql(),
                "SELECT COUNT(*) AS v FROM recordings WHERE status = 'pending'",
                vec![],
            )?;
            if pending == 0 {
                return Ok(());
            }
            self.move_archive_due(now_ms()).await
        }
        .await;
        if let Err(e) = r {
            worker::console_error!("inbox could not schedule the archive: {}", e);
        }
    }

    async fn move_archive_due(&self, at: i64) -> Result<()> {
        let table = self.schedule_table()?;
        let current = table
            .iter()
            .find(|d| d.kind == Work::Archive.as_str())
            .map(|d| d.at_ms);
        if current.is_some_and(|c| c <= at) {
            return Ok(());
        }
        self.set_due(Work::Archive, Some(at))?;
        self.arm(&self.schedule_table()?).await
    }

    /// The recording objects of receipts, by id (for a page being read).
    pub(super) fn recordings_of(&self, ids: &[&str]) -> Result<HashMap<String, String>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            #[serde(flatten)]
            rec: RecordingRow,
        }
        let list = serde_json::to_string(ids).map_err(schema::sql_err)?;
        let rows: Vec<Row> = self
            .sql()
            .exec(
                "SELECT id, status, size, sha256, archived_at_ms FROM recordings
                 WHERE id IN (SELECT value FROM json_each(?))",
                vec![text(&list)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| (r.id, r.rec.json())).collect())
    }

    /// One run of the archive: due jobs, at most `ARCHIVE_CONCURRENCY` at once; when it is due
    /// again.
    pub(super) async fn archive(&self) -> Result<Option<i64>> {
        let cfg = config(&self.env);
        if !cfg.enabled {
            return Ok(None);
        }
        self.archive_cleanup(&cfg).await?;
        let (Ok(policy), Ok(bucket)) = (&cfg.hosts, self.env.bucket(BUCKET)) else {
            worker::console_error!("recording archive misconfigured; see /healthz");
            return Ok(Some(now_ms() + 60_000));
        };
        let stream = self.meta().text(schema::STREAM_NAME)?.unwrap_or_default();
        let sql = self.sql();
        let now = now_ms();
        let jobs: Vec<JobRow> = sql
            .exec(
                "SELECT j.id, j.attempts, j.created_at_ms, r.norm->>'recording_url' AS url
                 FROM recordings j LEFT JOIN receipts r ON r.id = j.id
                 WHERE j.status = 'pending' AND j.next_at_ms <= ? ORDER BY j.next_at_ms LIMIT ?",
                vec![int(now), int(i64::from(cfg.concurrency))],
            )?
            .to_array()?;
        let (stream, bucket, cfg_ref) = (&stream, &bucket, &cfg);
        let runs = jobs.iter().map(|j| async move {
            let attempt = match &j.url {
                None => Attempt::Final(Status::Failed, "receipt removed"),
                Some(url) => {
                    let key = recording_url::object_key(stream, &j.id);
                    let work = download(policy, bucket, url, key);
                    let timeout = Delay::from(Duration::from_secs(u64::from(cfg_ref.timeout_s)));
                    match select(Box::pin(work), timeout).await {
                        Either::Left((a, _)) => a,
                        Either::Right(_) => Attempt::Retry("timed out".to_owned()),
                    }
                }
            };
            (j, attempt)
        });
        for (job, attempt) in join_all(runs).await {
            self.record_attempt(&cfg, job, attempt)?;
        }
        let next = scalar(
            &sql,
            "SELECT MIN(next_at_ms) AS v FROM recordings WHERE status = 'pending'",
            vec![],
        )?;
        let has_pending = scalar(
            &sql,
            "SELECT COUNT(*) AS v FROM recordings WHERE status = 'pending'",
            vec![],
        )? > 0;
        let cleanup = cfg.recording_retention_ms.map(|_| now_ms() + 3_600_000);
        Ok(match (has_pending, cleanup) {
            (true, c) => Some(c.map_or(next, |c| c.min(next))),
            (false, c) => c,
        })
    }

    fn record_attempt(&self, cfg: &ArchiveConfig, job: &JobRow, attempt: Attempt) -> Result<()> {
        let sql = self.sql();
        let now = now_ms();
        match attempt {
            Attempt::Archived { size, sha256 } => {
                sql.exec(
                    "UPDATE recordings SET status = 'archived', size = ?2, sha256 = ?3,
                       archived_at_ms = ?4, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                    vec![text(&job.id), int(size as i64), text(&sha256), int(now)],
                )?;
            }
            Attempt::Final(status, why) => {
                worker::console_log!("recording {}: {}", status.as_str(), why);
                sql.exec(
                    "UPDATE recordings SET status = ?2, attempts = attempts + 1, last_error = ?3
                     WHERE id = ?1",
                    vec![text(&job.id), text(status.as_str()), text(why)],
                )?;
            }
            Attempt::Retry(why) => {
                let attempts = job.attempts as u32 + 1;
                let next =
                    recording_archive::after_failure(cfg, job.created_at_ms as i64, attempts, now);
                worker::console_log!(
                    "recording attempt {} failed: {}{}",
                    attempts,
                    why,
                    if next.is_none() { " (giving up)" } else { "" }
                );
                sql.exec(
                    "UPDATE recordings SET status = ?2, attempts = ?3, next_at_ms = ?4, last_error = ?5
                     WHERE id = ?1",
                    vec![
                        text(&job.id),
                        text(if next.is_some() { "pending" } else { "failed" }),
                        int(i64::from(attempts)),
                        int(next.unwrap_or(now)),
                        text(&why),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Removes jobs (and their files) whose receipt retention removed, once
    /// `RECORDING_RETENTION_DAYS` (if set) has passed too.
    async fn archive_cleanup(&self, cfg: &ArchiveConfig) -> Result<()> {
        #[derive(Deserialize)]
        struct Gone {
            id: String,
            status: String,
        }
        let keep_until = now_ms() - cfg.recording_retention_ms.unwrap_or(0);
        let rows: Vec<Gone> = self
            .sql()
            .exec(
                "SELECT j.id, j.status FROM recordings j
                 WHERE NOT EXISTS (SELECT 1 FROM receipts r WHERE r.id = j.id)
                   AND j.created_at_ms < ? LIMIT 100",
                vec![int(keep_until)],
            )?
            .to_array()?;
        if rows.is_empty() {
            return Ok(());
        }
        let stream = self.meta().text(schema::STREAM_NAME)?.unwrap_or_default();
        let keys: Vec<String> = rows
            .iter()
            .filter(|r| r.status == Status::Archived.as_str())
            .map(|r| recording_url::object_key(&stream, &r.id))
            .collect();
        if !keys.is_empty() {
            self.env.bucket(BUCKET)?.delete_multiple(keys).await?;
        }
        let ids = serde_json::to_string(&rows.iter().map(|r| &r.id).collect::<Vec<_>>())
            .map_err(schema::sql_err)?;
        self.sql().exec(
            "DELETE FROM recordings WHERE id IN (SELECT value FROM json_each(?))",
            vec![text(&ids)],
        )?;
        Ok(())
    }

    /// `recordings_*` counters for the stream's stats.
    pub(super) fn recording_stats(&self) -> Result<serde_json::Value> {
        let sql = self.sql();
        let count = |q: &str| scalar(&sql, q, vec![]);
        Ok(serde_json::json!({
            "recordings_archived": count("SELECT COUNT(*) AS v FROM recordings WHERE status = 'archived'")?,
            "recordings_pending": count("SELECT COUNT(*) AS v FROM recordings WHERE status = 'pending'")?,
            "recordings_failed": count("SELECT COUNT(*) AS v FROM recordings WHERE status IN ('failed', 'gone', 'refused')")?,
            "recordings_bytes": count("SELECT SUM(size) AS v FROM recordings WHERE status = 'archived'")?,
        }))
    }
}

/// One attempt: check the address, fetch without following redirects (each one checked), stream
/// the body into R2 while hashing it.
async fn download(policy: &HostPolicy, bucket: &Bucket, url: &str, key: String) -> Attempt {
    let mut target = match policy.check(url) {
        Ok(u) => u,
        Err(r) => return Attempt::Final(Status::Refused, r.as_str()),
    };
    let mut redirects = 0;
    loop {
        let mut init = RequestInit::new();
        init.with_redirect(RequestRedirect::Manual);
        let resp = match Request::new_with_init(target.as_str(), &init) {
            Ok(req) => Fetch::Request(req).send().await,
            Err(e) => Err(e),
        };
        let mut resp = match resp {
            Ok(r) => r,
            Err(_) => return Attempt::Retry("source unreachable".to_owned()),
        };
        let status = resp.status_code();
        match recording_url::download_verdict(status) {
            DownloadVerdict::Gone => {
                return Attempt::Final(Status::Gone, "source answered 403/404")
            }
            DownloadVerdict::Retry => return Attempt::Retry(format!("source answered {status}")),
            DownloadVerdict::Redirect => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Attempt::Final(Status::Refused, "too many redirects");
                }
                let Ok(Some(loc)) = resp.headers().get("location") else {
                    return Attempt::Retry("redirect without location".to_owned());
                };
                target = match policy.check_redirect(&target, &loc) {
                    Ok(u) => u,
                    Err(r) => return Attempt::Final(Status::Refused, r.as_str()),
                };
            }
            DownloadVerdict::Store => return store(&mut resp, bucket, &key).await,
        }
    }
}

async fn store(resp: &mut worker::Response, bucket: &Bucket, key: &str) -> Attempt {
    let headers = resp.headers();
    let length = headers
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(length) = length else {
        return Attempt::Retry("source sent no Content-Length".to_owned());
    };
    let content_type = headers
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let body = match resp.stream() {
        Ok(b) => b,
        Err(_) => return Attempt::Retry("source body unreadable".to_owned()),
    };
    let hasher = Rc::new(RefCell::new(StreamHasher::default()));
    let h = hasher.clone();
    let hashed = body.map(move |chunk| {
        if let Ok(c) = &chunk {
            h.borrow_mut().update(c);
        }
        chunk
    });
    let put = bucket
        .put(key, FixedLengthStream::wrap(hashed, length))
        .http_metadata(HttpMetadata {
            content_type: Some(content_type),
            ..Default::default()
        })
        .execute()
        .await;
    let object = match put {
        Ok(Some(o)) => o,
        _ => return Attempt::Retry("upload to R2 failed".to_owned()),
    };
    let hasher = hasher.borrow();
    if hasher.size() != length || object.size() != length {
        return Attempt::Retry("size mismatch".to_owned());
    }
    Attempt::Archived {
        size: length,
        sha256: hasher.finish(),
    }
}
