//! Watch streams: the backlog since a resource version (or the current objects), then live
//! changes, bookmarks on a fixed beat, and 410 Gone when the history no longer reaches back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::super::select::{FieldSelector, LabelSelector};
use super::super::store::{Change, labels_of};
use super::crud::table;
use super::{KubeSandbox, Request, ResourceType, partial, selectors, wants_metadata, wants_table};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn gone(rv: u64) -> Bytes {
    watch_line(
        "ERROR",
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("too old resource version: {rv}"), "reason": "Expired", "code": 410}),
    )
}

/// Which changes a watch sends.
struct Filter {
    resource: String,
    ns: String,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn selects(&self, object: &Value) -> bool {
        self.labels.matches(&labels_of(object)) && self.fields.matches(object)
    }

    /// The event this watch sends for a change, if any: as kube-apiserver does, an object
    /// modified out of the selector is DELETED for this watch, one modified into it ADDED.
    fn event(&self, c: &Change) -> Option<&'static str> {
        if c.resource != self.resource || !(self.ns.is_empty() || c.namespace == self.ns) {
            return None;
        }
        let now = self.selects(&c.object);
        match (c.kind, &c.previous) {
            ("MODIFIED", Some(before)) => match (self.selects(before), now) {
                (true, true) => Some("MODIFIED"),
                (true, false) => Some("DELETED"),
                (false, true) => Some("ADDED"),
                (false, false) => None,
            },
            (kind, _) => now.then_some(kind),
        }
    }
}

/// How a watch writes an event: whole objects, table rows or metadata only.
struct Render {
    rt: ResourceType,
    as_table: bool,
    as_metadata: bool,
}

impl Render {
    fn line(&self, kind: &str, obj: &Value, first: bool) -> Bytes {
        if self.as_table && kind != "ERROR" && kind != "BOOKMARK" {
            watch_line(kind, &table(&self.rt, std::slice::from_ref(obj), 0, first))
        } else if self.as_metadata && kind != "ERROR" && kind != "BOOKMARK" {
            watch_line(kind, &partial(obj))
        } else {
            watch_line(kind, obj)
        }
    }
}

type Event = (&'static str, Value, u64);

/// The events owed and the version they start from, or the version the history lost.
type Backlog = Result<(Vec<Event>, u64), u64>;

/// The events a watch owes before live changes: the changes since the requested version, or
/// (without one) the current objects as ADDED. `Err(rv)` when the history no longer reaches
/// back to `rv`.
fn backlog(
    sb: &KubeSandbox,
    rt: &ResourceType,
    filter: &Filter,
    requested: Option<u64>,
) -> (Backlog, Receiver<Arc<Change>>) {
    let store = sb.store();
    let rx = store.subscribe();
    let now = store.resource_version();
    let owed = match requested {
        Some(rv) => match store.changes_since(rv) {
            Some(changes) => Ok((
                changes
                    .into_iter()
                    .filter_map(|c| Some((filter.event(&c)?, c.object.clone(), c.rv)))
                    .collect(),
                rv,
            )),
            None => Err(rv),
        },
        None => Ok((
            store
                .list(rt, &filter.ns)
                .into_iter()
                .map(|o| Change {
                    rv: now,
                    resource: filter.resource.clone(),
                    namespace: o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    kind: "ADDED",
                    object: o,
                    previous: None,
                })
                .filter(|c| filter.event(c).is_some())
                .map(|c| (c.kind, c.object, c.rv))
                .collect(),
            now,
        )),
    };
    (owed, rx)
}

/// A watch on a collection, as JSON lines over a chunked response.
pub(super) fn watch_response(r: &Request, rt: &ResourceType, ns: &str) -> Response {
    let (sb, q) = (r.sb, r.q);
    let (labels, fields) = selectors(q);
    let flag = |name: &str| q.get(name).is_some_and(|v| v == "true" || v == "1");
    let mut timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    if let Some(lifetime) = sb.store().faults.watch_lifetime {
        timeout = timeout.min(lifetime);
    }
    // A streaming list (kubectl 1.37's reflectors, client-go's WatchListClient): the current
    // objects as ADDED, then a bookmark annotated `k8s.io/initial-events-end`, then changes.
    let initial_events = flag("sendInitialEvents");
    let requested: Option<u64> = q
        .get("resourceVersion")
        .filter(|r| !r.is_empty() && *r != "0")
        .and_then(|r| r.parse().ok())
        .filter(|_| !initial_events);
    let filter = Filter {
        resource: rt.qualified(),
        ns: ns.to_string(),
        labels,
        fields,
    };
    let (owed, rx) = backlog(sb, rt, &filter, requested);
    let (backlog, start_rv) = match owed {
        Ok(owed) => owed,
        Err(rv) => {
            let body = Body::from_stream(futures::stream::once(async move {
                Ok::<_, std::convert::Infallible>(gone(rv))
            }));
            return chunked(body);
        }
    };
    let state = Watch {
        rx,
        backlog: backlog.into(),
        last_rv: start_rv,
        deadline: Instant::now() + timeout,
        initial_end: initial_events,
        next_bookmark: Instant::now() + BOOKMARK_EVERY,
        filter,
        render: Render {
            rt: rt.clone(),
            as_table: wants_table(r.headers),
            as_metadata: wants_metadata(r.headers),
        },
        first: true,
        done: false,
        bookmarks: flag("allowWatchBookmarks"),
    };
    let stream = futures::stream::unfold(state, |s| s.next());
    chunked(Body::from_stream(stream.boxed()))
}

/// A watch in progress.
struct Watch {
    rx: Receiver<Arc<Change>>,
    backlog: VecDeque<Event>,
    last_rv: u64,
    deadline: Instant,
    /// The end-of-initial-events bookmark is still owed (after the backlog).
    initial_end: bool,
    next_bookmark: Instant,
    filter: Filter,
    render: Render,
    first: bool,
    done: bool,
    bookmarks: bool,
}

impl Watch {
    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut bm = json!({"kind": self.render.rt.kind, "apiVersion": self.render.rt.api_version(), "metadata": {"resourceVersion": self.last_rv.to_string()}});
        if initial_end {
            bm["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        watch_line("BOOKMARK", &bm)
    }

    /// The next line of the stream, or its end.
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        if self.done {
            return None;
        }
        if let Some((kind, obj, rv)) = self.backlog.pop_front() {
            self.last_rv = self.last_rv.max(rv);
            let out = self.render.line(kind, &obj, self.first);
            self.first = false;
            return Some((Ok(out), self));
        }
        if self.initial_end {
            self.initial_end = false;
            return Some((Ok(self.bookmark(true)), self));
        }
        loop {
            // A bookmark on a fixed beat: changes of other resources do not put it off.
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = tokio::time::sleep_until(self.next_bookmark), if self.bookmarks => {
                    self.next_bookmark = Instant::now() + BOOKMARK_EVERY;
                    return Some((Ok(self.bookmark(false)), self));
                }
                msg = self.rx.recv() => match msg {
                    Ok(c) if c.rv > self.last_rv => {
                        let Some(kind) = self.filter.event(&c) else { continue };
                        self.last_rv = c.rv;
                        let out = self.render.line(kind, &c.object, self.first);
                        self.first = false;
                        return Some((Ok(out), self));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        self.done = true;
                        return Some((Ok(gone(self.last_rv)), self));
                    }
                    Err(_) => return None,
                }
            }
        }
    }
}

fn chunked(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
