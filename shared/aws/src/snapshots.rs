//! The snapshot bucket: backup payloads and manifests in S3, written once and never overwritten.
//!
//! # Keys (built here and nowhere else)
//!
//! | object | key |
//! |---|---|
//! | snapshot (normalized payload of one object) | `snapshots/{ws}/{tenant}/{sha256}.json` |
//! | manifest of a backup set (JSON array of entries) | `manifests/{ws}/{tenant}/{set}.json` |
//! | part of a run continued across invocations (what one invocation captured) | `runs/{ws}/{tenant}/{run}/part-{n}-{attempt}.json` |
//! | a restore item's whole diff, when too long for the item | `restore-diffs/{ws}/{tenant}/{restore}/{index:05}.json` |
//! | a drift item's whole diff, when too long for the item | `drift-diffs/{ws}/{tenant}/{before}-{after}.json` |
//!
//! Snapshots are content-addressed per tenant: an unchanged policy hashes the same in every
//! backup, so its key already exists and costs no new object. Tenants never share a
//! snapshot, so deleting one tenant's data never touches another's.
//!
//! Every write is a conditional `PutObject` with `If-None-Match: *`: S3 refuses it (412)
//! when the key exists, so nothing here can overwrite a snapshot or a manifest. The bucket
//! is versioned with Object Lock (governance mode, default retention from the template's
//! `SnapshotRetentionDays`); deletes name a version and are refused while it is locked.

use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use tenantops_core::{BackupSetId, RestoreId, RunId, TenantId, WorkspaceId};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Attempts at a conditional put that S3 answers 409 (another conditional write of the same
/// key in progress) before giving up.
const CONFLICT_ATTEMPTS: u32 = 5;

/// The key of a tenant's snapshot with this content hash.
pub fn snapshot_key(ws: WorkspaceId, tenant: TenantId, hash: &str) -> String {
    format!("snapshots/{ws}/{tenant}/{hash}.json")
}

/// The key of a backup set's manifest.
pub fn manifest_key(ws: WorkspaceId, tenant: TenantId, set: BackupSetId) -> String {
    format!("manifests/{ws}/{tenant}/{set}.json")
}

/// Where the parts of runs continued across invocations live. Only the run's own
/// continuations and its final assembly read them, within hours of their writing; the
/// template's lifecycle rule on this prefix expires them (tests/it/template.rs holds the two
/// together).
pub const RUN_PARTS_PREFIX: &str = "runs/";

/// The key of part `n` of a run that continues across invocations: what one invocation
/// captured before its checkpoint (a backup's manifest entries so far), so the checkpoint on
/// the run item holds only keys. `attempt` (the lease owner) keeps a crashed invocation's part
/// apart from its successor's: the checkpoint names the parts that count.
pub fn run_part_key(
    ws: WorkspaceId,
    tenant: TenantId,
    run: RunId,
    n: usize,
    attempt: &str,
) -> String {
    format!("{RUN_PARTS_PREFIX}{ws}/{tenant}/{run}/part-{n:05}-{attempt}.json")
}

/// The key of a restore item's whole diff (the item keeps a capped excerpt and this key).
pub fn restore_diff_key(
    ws: WorkspaceId,
    tenant: TenantId,
    restore: RestoreId,
    index: u32,
) -> String {
    format!("restore-diffs/{ws}/{tenant}/{restore}/{index:05}.json")
}

/// The key of a drift item's whole field diff between two snapshots (the item keeps a capped
/// excerpt and this key): named by the two hashes, so the same change is stored once.
pub fn drift_diff_key(ws: WorkspaceId, tenant: TenantId, before: &str, after: &str) -> String {
    format!("drift-diffs/{ws}/{tenant}/{before}-{after}.json")
}

/// What a conditional put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The object did not exist and now does, with these bytes.
    Created,
    /// The key already existed; it was left exactly as it was.
    AlreadyThere,
}

/// The current version of a stored object, as retention needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub version_id: Option<String>,
    /// Object Lock's retain-until date; `None` when the object is not locked.
    pub retain_until: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// An S3 call failed; `source` is the SDK error.
    #[error("S3 {operation} failed")]
    S3 {
        operation: &'static str,
        code: Option<String>,
        #[source]
        source: BoxError,
    },
    /// No object under the key.
    #[error("no stored object under the key")]
    NotFound,
    /// S3 kept answering that a conditional write of the same key was in progress.
    #[error("S3 kept reporting a concurrent conditional write of the key")]
    Contention,
}

impl SnapshotError {
    fn s3<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        SnapshotError::S3 {
            operation,
            code: err.code().map(str::to_owned),
            source: Box::new(err),
        }
    }

    /// The S3 error code (`PreconditionFailed`, `AccessDenied`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            SnapshotError::S3 { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// The HTTP status S3 answered with, if it answered at all.
fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Snapshot and manifest storage in the snapshot bucket.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    client: Client,
    bucket: String,
}

impl SnapshotStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// A store on the shared SDK configuration. With an endpoint override (an emulator such
    /// as moto) buckets are addressed by path, since `{bucket}.127.0.0.1` does not resolve.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self::new(Client::from_conf(config), bucket)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Writes `bytes` under `key` unless the key exists (`If-None-Match: *`); an existing
    /// object is never overwritten, whatever its bytes. No size limit is assumed.
    pub async fn put_if_absent(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, SnapshotError> {
        self.put_if_absent_with(key, bytes, &[]).await
    }

    /// [`SnapshotStore::put_if_absent`] with user metadata (`x-amz-meta-{name}`), written with
    /// the object and as immutable as it.
    pub async fn put_if_absent_with(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: &[(&str, &str)],
    ) -> Result<Stored, SnapshotError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/json");
            for (name, value) in metadata {
                req = req.metadata(*name, *value);
            }
            let result = req.body(ByteStream::from(bytes.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(Stored::Created),
                Err(e) => e,
            };
            match status_of(&err) {
                Some(412) => return Ok(Stored::AlreadyThere),
                // A concurrent conditional write of the same key: it is writing the same
                // content-addressed bytes; ask again once it has landed.
                Some(409) => {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                _ => return Err(SnapshotError::s3("PutObject", err)),
            }
        }
        Err(SnapshotError::Contention)
    }

    /// The bytes stored under `key` (a snapshot or a manifest); [`SnapshotError::NotFound`]
    /// when there is none. The restore preview reads snapshots through this.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, SnapshotError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if status_of(&e) == Some(404) => return Err(SnapshotError::NotFound),
            Err(e) => return Err(SnapshotError::s3("GetObject", e)),
        };
        let body = out.body.collect().await.map_err(|e| SnapshotError::S3 {
            operation: "GetObject body",
            code: None,
            source: Box::new(e),
        })?;
        Ok(body.into_bytes().to_vec())
    }

    /// The user metadata stored with `key`; `None` if absent.
    pub async fn metadata(
        &self,
        key: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, SnapshotError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(o.metadata.unwrap_or_default())),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(SnapshotError::s3("HeadObject", e)),
        }
    }

    /// The current version of `key` and its Object Lock retention; `None` if absent.
    pub async fn version(&self, key: &str) -> Result<Option<ObjectVersion>, SnapshotError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(SnapshotError::s3("HeadObject", e)),
        };
        let retain_until = out
            .object_lock_retain_until_date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()));
        Ok(Some(ObjectVersion {
            version_id: out.version_id().map(str::to_owned),
            retain_until,
        }))
    }

    /// Deletes exactly this version of `key` (not a delete marker: the bytes go). S3 refuses
    /// while the version's Object Lock retention lasts; governance is never bypassed.
    pub async fn delete_version(
        &self,
        key: &str,
        version: &ObjectVersion,
    ) -> Result<(), SnapshotError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.version_id.clone())
            .send()
            .await
            .map_err(|e| SnapshotError::s3("DeleteObject", e))?;
        Ok(())
    }
}
