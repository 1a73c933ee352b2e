//! `GET /tail`: live tails of the stream as hibernatable WebSockets. A new socket is sent what is
//! stored after its `after` (pages of `REPLAY_PAGE`, at most `MAX_LAG` receipts before it is told
//! to resume), then, after each commit that stored something, the new matching receipts. Each
//! socket's cursor and filter live in its attachment, so they survive hibernation.

use super::schema::{self, int, sql_err, text};
use super::Inbox;
use crate::respond;
use icc_core::error::ApiError;
use icc_core::inbox_protocol::Row;
use icc_core::inbox_rules;
use icc_core::tail::{
    close_reply_code, is_lagging, lagged_frame, receipt_frame, TailQuery, TailState, CLOSING,
    MAX_LAG, PROTOCOL, REPLAY_PAGE,
};
use serde::Deserialize;
use std::time::Duration;
use worker::{Delay, Headers, Request, Response, Result, WebSocket, WebSocketPair};

/// The tag every tail socket is accepted with.
const TAG: &str = "tail";

/// One stored receipt with its type, as a tail reads it.
#[derive(Deserialize)]
struct TailRow {
    seq: f64,
    #[serde(rename = "type")]
    message_type: String,
    norm: String,
    raw: String,
}

impl TailRow {
    fn frame(&self) -> String {
        receipt_frame(&Row::assemble(&self.norm, self.seq as i64, &self.raw))
    }
}

impl Inbox {
    fn tail_rows(&self, after: i64, types: &[String], limit: i64) -> Result<Vec<TailRow>> {
        let mut q = String::from("SELECT seq, type, norm, raw FROM receipts WHERE seq > ?1");
        let mut binds = vec![int(after)];
        if !types.is_empty() {
            q.push_str(" AND type IN (SELECT value FROM json_each(?3))");
        }
        q.push_str(" ORDER BY seq LIMIT ?2");
        binds.push(int(limit));
        if !types.is_empty() {
            binds.push(text(&serde_json::to_string(types).map_err(sql_err)?));
        }
        self.sql().exec(&q, binds)?.to_array()
    }

    pub(super) fn tail_open(&self, req: &Request, query: TailQuery) -> Result<Response> {
        let upgrade = req.headers().get("upgrade")?;
        if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return respond::error(&ApiError::bad("the tail is a WebSocket: send Upgrade"));
        }
        let meta = self.meta();
        let head = meta.int(schema::HEAD_SEQ)?;
        let after = query.after.unwrap_or(head);
        if let Err(e) = inbox_rules::check_cursor(after, head, meta.int(schema::REMOVED_THROUGH)?) {
            return respond::error(&e);
        }
        let pair = WebSocketPair::new()?;
        let server = pair.server;
        self.state.accept_websocket_with_tags(&server, &[TAG]);
        // Replay. No await from here to the attachment: no commit can interleave.
        let mut state = TailState {
            sent_through: after,
            types: query.types,
        };
        let mut sent: i64 = 0;
        loop {
            let rows = self.tail_rows(state.sent_through, &state.types, i64::from(REPLAY_PAGE))?;
            for r in &rows {
                server.send_with_str(r.frame())?;
                state.sent_through = r.seq as i64;
            }
            sent += rows.len() as i64;
            if (rows.len() as u32) < REPLAY_PAGE {
                // Everything stored up to the head matching the filter was sent.
                state.sent_through = head;
                break;
            }
            if sent >= MAX_LAG {
                server.send_with_str(lagged_frame(state.sent_through))?;
                // A socket cannot be closed before its 101 is answered: closed right after.
                let ws = server.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    Delay::from(Duration::from_millis(1)).await;
                    let _ = ws.close(Some(1000), Some("lagged"));
                });
                // Closing: live commits skip it.
                state.sent_through = CLOSING;
                break;
            }
        }
        server.serialize_attachment(&state)?;
        let headers = Headers::new();
        if icc_core::tail::offers_protocol(req.headers().get("sec-websocket-protocol")?.as_deref())
        {
            headers.set("sec-websocket-protocol", PROTOCOL)?;
        }
        Ok(Response::from_websocket(pair.client)?.with_headers(headers))
    }

    /// After a commit stored something: the new receipts to every open tail. With no tail open
    /// this is one runtime call.
    pub(super) fn tail_broadcast(&self, head: i64) {
        let sockets = self.state.get_websockets_with_tag(TAG);
        if sockets.is_empty() {
            return;
        }
        if let Err(e) = self.tail_send(&sockets, head) {
            worker::console_error!("tail broadcast failed: {}", e);
        }
    }

    fn tail_send(&self, sockets: &[WebSocket], head: i64) -> Result<()> {
        let mut open: Vec<(&WebSocket, TailState)> = Vec::with_capacity(sockets.len());
        for ws in sockets {
            let Ok(Some(state)) = ws.deserialize_attachment::<TailState>() else {
                continue;
            };
            if state.sent_through >= head {
                continue;
            }
            if is_lagging(state.sent_through, head) {
                let _ = ws.send_with_str(lagged_frame(state.sent_through));
                let _ = ws.close(Some(1000), Some("lagged"));
                let _ = ws.serialize_attachment(TailState {
                    sent_through: CLOSING,
                    types: vec![],
                });
                continue;
            }
            open.push((ws, state));
        }
        let Some(from) = open.iter().map(|(_, s)| s.sent_through).min() else {
            return Ok(());
        };
        // One read and one rendering of each new row, shared by every socket.
        let rows = self.tail_rows(from, &[], MAX_LAG + 1)?;
        let frames: Vec<(i64, &str, String)> = rows
            .iter()
            .map(|r| (r.seq as i64, r.message_type.as_str(), r.frame()))
            .collect();
        for (ws, mut state) in open {
            for (seq, t, frame) in &frames {
                if *seq > state.sent_through && state.wants(t) && ws.send_with_str(frame).is_err() {
                    break;
                }
            }
            state.sent_through = head;
            let _ = ws.serialize_attachment(&state);
        }
        Ok(())
    }

    /// A message from a tail client: the tail takes none, so it is ignored.
    pub(super) fn tail_message(&self) {}

    /// A client closed its tail: answered with a close (this compatibility date does not answer
    /// it automatically).
    pub(super) fn tail_closed(&self, ws: &WebSocket, code: usize) {
        let _ = ws.close(Some(close_reply_code(code)), Some("closed"));
    }
}
