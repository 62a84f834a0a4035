//! Identifiers. Workspaces, tenants and runs are ULIDs (sortable by creation time, which is
//! what makes "newest first" an index order); users are the JWT `sub` the gateway verified.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a valid id")]
    Malformed(String),
    #[error("user ids must be 1 to 128 printable characters")]
    BadUser,
}

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            pub fn new() -> Self {
                Self(Ulid::new())
            }
            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }
            pub fn ulid(&self) -> Ulid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Canonical form only: ULIDs are case-insensitive, but one spelling per id keeps
                // keys and URLs stable.
                match Ulid::from_string(s) {
                    Ok(u) if u.to_string() == s => Ok(Self(u)),
                    _ => Err(IdError::Malformed(s.chars().take(64).collect())),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

ulid_id!(
    /// A workspace: one MSP (or one team of it) and its members.
    WorkspaceId
);
ulid_id!(
    /// A customer tenant inside a workspace (not the Entra tenant GUID).
    TenantId
);
ulid_id!(
    /// An operation run.
    RunId
);
ulid_id!(
    /// A tenant's backup schedule.
    ScheduleId
);
ulid_id!(
    /// One backup set: the manifest a backup run wrote, never changed afterwards.
    BackupSetId
);
ulid_id!(
    /// A restore: its preview, confirmation and (once executed) its run.
    RestoreId
);
ulid_id!(
    /// A batch: one request that starts a type's run in many tenants of a workspace.
    BatchId
);
ulid_id!(
    /// A webhook subscription of a workspace.
    WebhookId
);

/// The authenticated caller: the JWT `sub` claim that API Gateway verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        // `#` is the key separator of the store; keeping it out of user ids keeps keys unambiguous.
        let ok =
            !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic() && c != '#');
        if ok {
            Ok(Self(s))
        } else {
            Err(IdError::BadUser)
        }
    }
}

impl FromStr for UserId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_canonical_string() {
        let id = RunId::new();
        let parsed: RunId = id.to_string().parse().expect("canonical id parses");
        assert_eq!(id, parsed);
    }

    #[test]
    fn non_canonical_and_garbage_ids_are_rejected() {
        let id = RunId::new().to_string().to_lowercase();
        assert!(id.parse::<RunId>().is_err());
        assert!("not-a-run".parse::<RunId>().is_err());
        assert!("".parse::<TenantId>().is_err());
    }

    #[test]
    fn user_ids_reject_separators_and_blank() {
        assert!("alice".parse::<UserId>().is_ok());
        assert!("a#b".parse::<UserId>().is_err());
        assert!("".parse::<UserId>().is_err());
        assert!("a b".parse::<UserId>().is_err());
    }
}
