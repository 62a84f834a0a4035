//! Identity derivation: which runs count as "the same run".
//!
//! The identity is a string key; the store writes one lock item per identity in the same
//! transaction as the run, so uniqueness is enforced by DynamoDB, never by a prior read.

use std::fmt;

use sha2::{Digest, Sha256};
use ulid::Ulid;

use crate::ids::{TenantId, UserId, WorkspaceId};
use crate::operation::{IdentityRule, OperationType};
use crate::params::OperationParams;

/// What happens to an identity's lock when its run finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Deleted with the terminal transition: the identity is free again.
    WhileActive,
    /// Kept forever: the identity can never have a second run.
    Strict,
    /// Kept until its expiry, so a retried request with the same `Idempotency-Key` finds it.
    Idempotent,
}

/// A client `Idempotency-Key` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    BadIdempotencyKey,
}

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let ok = !raw.is_empty() && raw.len() <= 255 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdentityError::BadIdempotencyKey)
        }
    }
}

/// What distinguishes one click from another for unique-per-click types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Click {
    /// No key given: every request is a new click.
    Nonce(Ulid),
    /// The same caller repeating the same key means the same click.
    Keyed { user: UserId, key: IdempotencyKey },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key: String,
    pub lock: LockKind,
    /// Minted for this request alone (a click without `Idempotency-Key`): no lock can hold it
    /// yet, so a start need not look for one.
    pub fresh: bool,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl Identity {
    /// Derives the identity of a start of `params` on `tenant` in `ws`. `click` matters only
    /// for unique-per-click types.
    pub fn derive(
        ws: WorkspaceId,
        tenant: TenantId,
        params: &OperationParams,
        click: &Click,
    ) -> Identity {
        let operation = params.operation();
        let scope = format!("{ws}/{tenant}/{operation}");
        let suffix = params.type_params().identity_suffix();
        let scoped = || match &suffix {
            Some(segments) => format!("{scope}/{segments}"),
            None => scope.clone(),
        };
        match operation.spec().identity_rule {
            IdentityRule::DeterministicWhileActive => Identity {
                key: scoped(),
                lock: LockKind::WhileActive,
                fresh: false,
            },
            IdentityRule::Strict => Identity {
                key: scoped(),
                lock: LockKind::Strict,
                fresh: false,
            },
            IdentityRule::UniquePerClick => match click {
                Click::Nonce(n) => Identity {
                    key: format!("{scope}/nonce/{n}"),
                    lock: LockKind::Idempotent,
                    fresh: true,
                },
                // Keyed per workspace and caller, not per type or tenant: reusing a key for a
                // different request must be caught (422), not silently start a second run.
                Click::Keyed { user, key } => Identity {
                    key: keyed(ws, user, key),
                    lock: LockKind::Idempotent,
                    fresh: false,
                },
            },
        }
    }
}

/// The identity of a caller's `Idempotency-Key` in a workspace: one per workspace, caller and
/// key, whatever the request (a run's start or a batch), so a key reused for another request
/// is caught by its fingerprint.
pub fn keyed(ws: WorkspaceId, user: &UserId, key: &IdempotencyKey) -> String {
    format!("{ws}/idempotency/{user}/{}", hex_sha256(key.0.as_bytes()))
}

/// A fingerprint of a start request, stored on idempotency locks: the same key with a
/// different request is refused instead of answered with an unrelated run.
pub fn request_fingerprint(tenant: TenantId, params: &OperationParams) -> String {
    let canonical = serde_json::json!({
        "tenant": tenant.to_string(),
        "type": params.operation().as_str(),
        "params": params.to_value(),
    });
    hex_sha256(canonical.to_string().as_bytes())
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The identity rule's lock kind, without deriving a key (the store needs it when finishing).
pub fn lock_kind_of(operation: OperationType) -> LockKind {
    match operation.spec().identity_rule {
        IdentityRule::DeterministicWhileActive => LockKind::WhileActive,
        IdentityRule::Strict => LockKind::Strict,
        IdentityRule::UniquePerClick => LockKind::Idempotent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn ids(a: u128, b: u128) -> (WorkspaceId, TenantId) {
        (
            WorkspaceId::from_ulid(Ulid(a)),
            TenantId::from_ulid(Ulid(b)),
        )
    }

    fn user(s: &str) -> UserId {
        s.parse().expect("valid user")
    }

    proptest! {
        #[test]
        fn deterministic_identities_depend_only_on_scope(
            ws in any::<u128>(), t1 in any::<u128>(), t2 in any::<u128>(), n1 in any::<u128>(), n2 in any::<u128>(),
            ty_idx in 0usize..4,
        ) {
            let ty = OperationType::ALL[ty_idx];
            let p = OperationParams::parse(ty, None).expect("defaults");
            let (w, a) = ids(ws, t1);
            let (_, b) = ids(ws, t2);
            let i1 = Identity::derive(w, a, &p, &Click::Nonce(Ulid(n1)));
            let i2 = Identity::derive(w, a, &p, &Click::Nonce(Ulid(n2)));
            prop_assert_eq!(&i1, &i2);
            prop_assert_eq!(i1.lock, LockKind::WhileActive);
            let other = Identity::derive(w, b, &p, &Click::Nonce(Ulid(n1)));
            prop_assert_eq!(t1 == t2, i1 == other);
        }

        #[test]
        fn unique_per_click_identities_differ_per_click_and_repeat_per_key(
            ws in any::<u128>(), t in any::<u128>(), n1 in any::<u128>(), n2 in any::<u128>(),
            key in "[!-~]{1,40}", other_key in "[!-~]{1,40}",
        ) {
            let (w, tn) = ids(ws, t);
            let p = OperationParams::parse(OperationType::BackupScheduleRunNow, None).expect("defaults");
            let a = Identity::derive(w, tn, &p, &Click::Nonce(Ulid(n1)));
            let b = Identity::derive(w, tn, &p, &Click::Nonce(Ulid(n2)));
            prop_assert_eq!(n1 == n2, a == b);
            let keyed = |k: &str, u: &str| Identity::derive(w, tn, &p, &Click::Keyed {
                user: user(u), key: IdempotencyKey::parse(k).expect("valid key"),
            });
            prop_assert_eq!(keyed(&key, "alice"), keyed(&key, "alice"));
            prop_assert_ne!(keyed(&key, "alice"), keyed(&key, "bob"));
            prop_assert_eq!(key == other_key, keyed(&key, "alice") == keyed(&other_key, "alice"));
        }

        #[test]
        fn strict_identities_are_one_per_schedule_slot(
            ws in any::<u128>(), t in any::<u128>(), s in any::<u128>(),
            at1 in 0i64..4_000_000_000, at2 in 0i64..4_000_000_000,
        ) {
            let (w, tn) = ids(ws, t);
            let slot = |at: i64| OperationParams::BackupScheduleScheduled(BackupScheduledParams {
                backup_schedule_id: Ulid(s),
                scheduled_for: Utc.timestamp_opt(at, 0).single().expect("in range"),
            });
            let a = Identity::derive(w, tn, &slot(at1), &Click::Nonce(Ulid::new()));
            let b = Identity::derive(w, tn, &slot(at2), &Click::Nonce(Ulid::new()));
            prop_assert_eq!(a.lock, LockKind::Strict);
            prop_assert_eq!(at1 == at2, a == b);
        }
    }

    #[test]
    fn connection_checks_are_scoped_by_connection() {
        let (w, t) = ids(1, 2);
        let p = |c: &str| {
            OperationParams::ProviderConnectionVerify(ProviderConnectionVerifyParams {
                connection_id: c.into(),
            })
        };
        let n = Click::Nonce(Ulid::new());
        assert_ne!(
            Identity::derive(w, t, &p("a"), &n),
            Identity::derive(w, t, &p("b"), &n)
        );
    }

    #[test]
    fn fingerprints_change_with_the_request() {
        let (_, t) = ids(1, 2);
        let a = OperationParams::parse(OperationType::BackupScheduleRunNow, None).expect("ok");
        let b = OperationParams::parse(
            OperationType::BackupScheduleRunNow,
            Some(serde_json::json!({"backup_schedule_id": Ulid(7).to_string()})),
        )
        .expect("ok");
        assert_eq!(request_fingerprint(t, &a), request_fingerprint(t, &a));
        assert_ne!(request_fingerprint(t, &a), request_fingerprint(t, &b));
    }

    #[test]
    fn idempotency_keys_are_validated() {
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
