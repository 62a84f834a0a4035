//! A restore preview's request body, `{backup_set_id, destination_tenant_id?, items?,
//! mapping?}`, read field by field so that each mistake has its stable code; the check of
//! its items against the set; and the confirmation token a preview is answered with.

use std::collections::HashSet;

use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use tenantops_core::restore::{MAX_SELECTED_ITEMS, Mapping};
use tenantops_core::{BackupSetId, ReasonCode, TenantId, WorkspaceId};

use crate::Deps;
use crate::error::ApiError;

/// Manifest entries read per query while checking a selection.
const MANIFEST_PAGE: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemRef {
    pub object_type: String,
    pub object_id: String,
}

#[derive(Debug)]
pub(crate) struct PreviewRequest {
    pub backup_set: BackupSetId,
    /// Where to restore; `None`: the set's own tenant.
    pub destination: Option<TenantId>,
    pub items: Option<Vec<ItemRef>>,
    pub mapping: Mapping,
}

/// `{backup_set_id, destination_tenant_id?, items?, mapping?}`, checked field by field so each
/// mistake has its code.
pub(crate) fn parse_preview(body: Value) -> Result<PreviewRequest, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(extra) = map.keys().find(|k| {
        !["backup_set_id", "destination_tenant_id", "items", "mapping"].contains(&k.as_str())
    }) {
        return Err(ApiError::InvalidBody(format!(
            "unknown field `{}`; expected `backup_set_id`, `destination_tenant_id`, `items` and `mapping`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let backup_set = match map.remove("backup_set_id") {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ApiError::Restore(ReasonCode::RestoreBackupSetNotFound))?,
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "`backup_set_id` must be a string".into(),
            ));
        }
        None => return Err(ApiError::InvalidBody("`backup_set_id` is required".into())),
    };
    let destination = match map.remove("destination_tenant_id") {
        None | Some(Value::Null) => None,
        // Not an id of any tenant: as missing as another workspace's.
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| ApiError::NotFound(crate::error::Resource::Tenant))?,
        ),
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "`destination_tenant_id` must be a string".into(),
            ));
        }
    };
    let items = match map.remove("items") {
        None | Some(Value::Null) => None,
        Some(v) => {
            // The list's shape is the document's (objects of two strings, 1 to 500 of them,
            // none twice): a 422 like any body the schema refuses. Whether each is an
            // object of the set is the set's to say (409 `restore.items_invalid`, below).
            let items: Vec<ItemRef> = serde_json::from_value(v).map_err(|_| {
                ApiError::InvalidBody(
                    "`items` must be a list of {\"object_type\", \"object_id\"}".into(),
                )
            })?;
            let distinct: HashSet<(&str, &str)> = items
                .iter()
                .map(|i| (i.object_type.as_str(), i.object_id.as_str()))
                .collect();
            if items.len() > MAX_SELECTED_ITEMS {
                return Err(ApiError::Restore(ReasonCode::RestoreTooManyItems));
            }
            if items.is_empty() || distinct.len() != items.len() {
                return Err(ApiError::InvalidBody(
                    "`items` must name 1 to 500 objects, none twice; leave it out for every object"
                        .into(),
                ));
            }
            Some(items)
        }
    };
    let mapping: Mapping = match map.remove("mapping") {
        None | Some(Value::Null) => Mapping::default(),
        Some(v) => serde_json::from_value(v)
            .map_err(|_| ApiError::Restore(ReasonCode::RestoreMappingInvalid))?,
    };
    mapping
        .validate()
        .map_err(|_| ApiError::Restore(ReasonCode::RestoreMappingInvalid))?;
    Ok(PreviewRequest {
        backup_set,
        destination,
        items,
        mapping,
    })
}

/// Every selected item is an object of the set: the manifest is read until all are found.
pub(crate) async fn check_selected(
    deps: &Deps,
    ws: WorkspaceId,
    tenant: TenantId,
    set: BackupSetId,
    items: &[ItemRef],
) -> Result<(), ApiError> {
    let mut missing: HashSet<(&str, &str)> = items
        .iter()
        .map(|i| (i.object_type.as_str(), i.object_id.as_str()))
        .collect();
    let mut after = None;
    while !missing.is_empty() {
        let page = deps
            .store
            .manifest_entries(ws, tenant, set, MANIFEST_PAGE, after)
            .await?;
        missing.retain(|(t, i)| {
            !page
                .entries
                .iter()
                .any(|e| e.object_type == *t && e.object_id == *i)
        });
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Restore(ReasonCode::RestoreItemsInvalid))
    }
}

/// 32 random bytes, base64url: returned once, stored only as its sha256.
pub(crate) fn confirmation_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
