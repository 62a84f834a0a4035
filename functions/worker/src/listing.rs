//! Walking the object types of a run that visits every object (a backup, a drift check): the
//! types in scope, each listed page by page through the registry from a cursor, a page's
//! objects visited concurrently and its counters moved once the page is done, no new page
//! near the deadline (but the invocation's first) or after a long throttle; and the parts
//! a run continued across invocations keeps in the snapshot bucket.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantops_core::reason::ReasonCategory;
use tenantops_core::{Counters, Failure, ReasonCode, Run};
use tenantops_graph::Credentials;
use tenantops_graph::GraphError;
use tenantops_graph::registry::{ObjectType, REGISTRY};

use tenantops_aws::snapshots::run_part_key;

use crate::capture::storage;
use crate::job::{Deps, Job, Stop};

/// Registry types walked at the same time; the tenant's budgets pace the requests.
const TYPE_CONCURRENCY: usize = 4;
/// Objects of one type read at the same time (each is 0 to 2 Graph requests beyond its list).
const OBJECT_CONCURRENCY: usize = 8;

/// One type's listing position.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The next page to read (`@odata.nextLink`); `None` once the type is done.
    pub next: Option<String>,
    /// Pages finished.
    pub pages: u32,
}

/// Why a type stopped before its end in this invocation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pause {
    Deadline,
    HandBack(Duration),
}

impl Pause {
    /// Two types' pauses as one: the longest hand-back wins over the deadline.
    pub fn merge(a: Option<Pause>, b: Option<Pause>) -> Option<Pause> {
        match (a, b) {
            (Some(Pause::HandBack(a)), Some(Pause::HandBack(b))) => Some(Pause::HandBack(a.max(b))),
            (Some(Pause::HandBack(a)), _) | (_, Some(Pause::HandBack(a))) => {
                Some(Pause::HandBack(a))
            }
            (p, q) => p.or(q),
        }
    }
}

/// What visiting one listed object came to.
pub(crate) enum Visited<T> {
    Kept(T),
    /// Gone between the list and the read.
    Vanished,
    Failed(Failure),
}

/// What one type came to in this invocation.
pub(crate) struct TypeResult<T> {
    pub ty: &'static str,
    /// Where its listing stands now.
    pub cursor: Cursor,
    /// Why it stopped before its end, if it did.
    pub paused: Option<Pause>,
    pub kept: Vec<T>,
    pub failures: Vec<Failure>,
    /// Its list itself failed: nothing of it was seen.
    pub unlisted: bool,
}

/// The object types a run covers: `context.target_scope.types`, or every backup type.
/// Names the registry does not know (or that are not backed up) come back as `Err`.
pub(crate) fn scope(run: &Run) -> Vec<Result<&'static ObjectType, String>> {
    let named: Option<Vec<String>> = run
        .context
        .target_scope
        .get("types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    match named {
        Some(names) if !names.is_empty() => names
            .into_iter()
            .map(|n| match ObjectType::named(&n) {
                Some(t) if t.backup => Ok(t),
                _ => Err(n),
            })
            .collect(),
        _ => REGISTRY.iter().filter(|t| t.backup).map(Ok).collect(),
    }
}

/// Walks every type of `types` not done yet (a type done has a cursor without a next link),
/// from its cursor, each object through `visit`. Returns each walked type's result and why
/// the invocation pauses: a type's own pause, or, after work in this invocation, too little
/// room left to close the run (which the next invocation then does from the parts).
pub(crate) async fn walk_types<T, F, Fut>(
    job: Job<'_>,
    creds: &Credentials,
    types: &[&'static ObjectType],
    cursors: &BTreeMap<String, Cursor>,
    visit: F,
) -> Result<(Vec<TypeResult<T>>, Option<Pause>), Stop>
where
    F: Fn(&'static ObjectType, Value) -> Fut,
    Fut: Future<Output = Result<Visited<T>, Stop>>,
{
    // The first page of the invocation is always read, so every invocation moves on.
    let moved = AtomicBool::new(false);
    let visit = &visit;
    let pending: Vec<_> = types
        .iter()
        .copied()
        .filter(|ty| cursors.get(ty.name).is_none_or(|c| c.next.is_some()))
        .map(|ty| {
            let cursor = cursors.get(ty.name).cloned();
            walk_type(job, creds, ty, cursor, &moved, move |o| visit(ty, o))
        })
        .collect();
    let walked: Vec<Result<TypeResult<T>, Stop>> = stream::iter(pending)
        .buffer_unordered(TYPE_CONCURRENCY)
        .collect()
        .await;
    let (mut out, mut pause) = (Vec::new(), None);
    for r in walked {
        let r = r?;
        pause = Pause::merge(pause, r.paused);
        out.push(r);
    }
    if pause.is_none() && moved.load(Ordering::SeqCst) && job.lacks_room_to_close() {
        pause = Some(Pause::Deadline);
    }
    Ok((out, pause))
}

/// Lists one type page by page from `cursor` (its start when `None`) and visits each page's
/// objects; a page's counters move once the page is done. Stops before a new page once the
/// deadline is near (but `moved` makes the invocation's first page go ahead).
async fn walk_type<T, F, Fut>(
    job: Job<'_>,
    creds: &Credentials,
    ty: &'static ObjectType,
    cursor: Option<Cursor>,
    moved: &AtomicBool,
    visit: F,
) -> Result<TypeResult<T>, Stop>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<Visited<T>, Stop>>,
{
    let deps = job.deps;
    let mut result = TypeResult {
        ty: ty.name,
        cursor: cursor.unwrap_or(Cursor {
            next: Some(ty.backup_list_path()),
            pages: 0,
        }),
        paused: None,
        kept: Vec::new(),
        failures: Vec::new(),
        unlisted: false,
    };
    while let Some(link) = result.cursor.next.clone() {
        if job.should_yield() && moved.load(Ordering::SeqCst) {
            result.paused = Some(Pause::Deadline);
            break;
        }
        let page = match deps.graph.page(creds, ty.budget, &link, false).await {
            Ok(p) => p,
            Err(GraphError::Throttled { retry_after }) => {
                result.paused = Some(Pause::HandBack(retry_after));
                break;
            }
            Err(e) if e.reason().category() == ReasonCategory::Graph => {
                tracing::warn!(object_type = ty.name, reason = %e.reason(), "type could not be listed");
                job.progress(Counters {
                    total: 1,
                    processed: 1,
                    failed: 1,
                    ..Counters::default()
                })
                .await?;
                result.failures.push(Failure {
                    object_ref: Some(ty.name.to_owned()),
                    ..e.failure()
                });
                result.cursor.next = None;
                result.unlisted = true;
                break;
            }
            Err(e) => return Err(Stop::from(e)),
        };
        let visited: Vec<Result<Visited<T>, Stop>> = stream::iter(page.items)
            .map(&visit)
            .buffer_unordered(OBJECT_CONCURRENCY)
            .collect()
            .await;
        let (mut kept, mut failures) = (Vec::new(), Vec::new());
        let mut delta = Counters::default();
        let mut handed_back = None;
        for v in visited {
            match v {
                Ok(Visited::Kept(k)) => {
                    delta.succeeded += 1;
                    kept.push(k);
                }
                Ok(Visited::Vanished) => delta.skipped += 1,
                Ok(Visited::Failed(f)) => {
                    delta.failed += 1;
                    failures.push(f);
                }
                Err(Stop::HandBack(after)) => {
                    handed_back = Some(handed_back.map_or(after, |a: Duration| a.max(after)))
                }
                Err(stop) => return Err(stop),
            }
        }
        if let Some(after) = handed_back {
            // The page is read again after the throttle; what it visited is not counted.
            result.paused = Some(Pause::HandBack(after));
            break;
        }
        delta.processed = delta.succeeded + delta.skipped + delta.failed;
        delta.total = delta.processed;
        job.progress(delta).await?;
        result.kept.extend(kept);
        result.failures.extend(failures);
        result.cursor = Cursor {
            next: page.next_link,
            pages: result.cursor.pages + 1,
        };
        moved.store(true, Ordering::SeqCst);
    }
    Ok(result)
}

/// Writes this invocation's part, when it `found` anything, and names it in `parts` (the
/// checkpoint's list: the attempt in its key keeps a dead attempt's part out).
pub(crate) async fn save_part<T: Serialize>(
    job: Job<'_>,
    parts: &mut Vec<String>,
    part: &T,
    found: bool,
) -> Result<(), Stop> {
    if !found {
        return Ok(());
    }
    let run = job.run;
    let key = run_part_key(
        run.workspace_id,
        run.tenant_id,
        run.id,
        parts.len(),
        job.owner,
    );
    put_part(job.deps, &key, part).await?;
    parts.push(key);
    Ok(())
}

/// How a run stops for `pause` with `state` as its checkpoint: handed on to a new invocation
/// at the deadline, or handed back after a throttle with the work done so far kept.
pub(crate) async fn stop_for(job: Job<'_>, pause: Pause, state: Value) -> Stop {
    match pause {
        Pause::Deadline => job.pause(state).await,
        Pause::HandBack(after) => match job.checkpoint(state).await {
            Ok(()) => Stop::HandBack(after),
            Err(stop) => stop,
        },
    }
}

/// Writes a run's part (what an invocation found) to the snapshot bucket, once.
pub(crate) async fn put_part<T: Serialize>(deps: &Deps, key: &str, value: &T) -> Result<(), Stop> {
    let bytes = serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, "a run part does not serialize");
        Stop::Fail(ReasonCode::Internal)
    })?;
    deps.snapshots
        .put_if_absent(key, bytes)
        .await
        .map_err(storage)?;
    Ok(())
}

/// Reads a run's part back.
pub(crate) async fn get_part<T: serde::de::DeserializeOwned>(
    deps: &Deps,
    key: &str,
) -> Result<T, Stop> {
    let bytes = deps.snapshots.get(key).await.map_err(storage)?;
    serde_json::from_slice(&bytes).map_err(|_| {
        tracing::error!("a stored run part does not parse");
        Stop::Fail(ReasonCode::BackupStorageFailed)
    })
}
