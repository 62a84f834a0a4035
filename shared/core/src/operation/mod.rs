//! The operation-type registry: every kind of run, declared once in [`types`], and the
//! machinery that turns each declaration into the enum, its string, its identity rule, its
//! capabilities, its params type with parsing and defaults, its run context and its label.
//!
//! Adding a type is one entry in `types.rs`'s `operations!` table plus its params struct (with
//! its [`TypeParams`] impl) beside it, then its worker job and its tests.

mod types;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::capability::Capability;
use crate::run::RunContext;

pub use types::*;

/// How a start request maps to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityRule {
    /// One active run per identity; a start while one is active returns it.
    DeterministicWhileActive,
    /// A new run per request, unless the client repeats an `Idempotency-Key`.
    UniquePerClick,
    /// At most one run per identity, ever.
    Strict,
}

/// Where a type may be started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartSurface {
    /// `POST .../operations` with `{type, params}`.
    OperationsRoute,
    /// Only through its own route, which checks what the generic route cannot (a restore's
    /// confirmation token, the run a retry refers to).
    DedicatedRoute,
    /// Never by a user: the scheduler creates these.
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationSpec {
    pub identity_rule: IdentityRule,
    pub start_capability: Capability,
    pub view_capability: Capability,
    pub start_surface: StartSurface,
    pub label: &'static str,
}

/// What a type's params say beyond their fields' types: the checks serde cannot make, the
/// identity segments that tell two runs of the type apart, and what the run's context records.
pub trait TypeParams {
    /// Checks beyond the field types; the message names the offending field.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Identity segments after `{ws}/{tenant}/{type}`, for deterministic and strict types:
    /// `None` means one run per tenant.
    fn identity_suffix(&self) -> Option<String> {
        None
    }

    /// Records the params' facts on a new run's context, whose `target_scope` already holds
    /// the object types the start limited the run to (or `"tenant"`).
    fn fill_context(&self, _ctx: &mut RunContext) {}
}

/// Declares every operation type: one entry each, in registry order. Generates
/// [`OperationType`] (with `ALL`, `as_str` and `spec`) and `OperationParams` (one variant per
/// type, holding its params struct).
macro_rules! operations {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident {
            name: $name:literal,
            label: $label:literal,
            identity: $identity:ident,
            start: $start:ident,
            view: $view:ident,
            surface: $surface:ident,
            params: $params:ty $(,)?
        }
    )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OperationType {
            $($(#[doc = $doc])* $variant,)*
        }

        impl OperationType {
            /// How many types there are.
            pub const COUNT: usize = [$($name,)*].len();
            pub const ALL: [OperationType; Self::COUNT] = [$(OperationType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(OperationType::$variant => $name,)*
                }
            }

            pub fn spec(self) -> $crate::operation::OperationSpec {
                match self {
                    $(OperationType::$variant => $crate::operation::OperationSpec {
                        identity_rule: $crate::operation::IdentityRule::$identity,
                        start_capability: $crate::capability::Capability::$start,
                        view_capability: $crate::capability::Capability::$view,
                        start_surface: $crate::operation::StartSurface::$surface,
                        label: $label,
                    },)*
                }
            }
        }

        /// Validated parameters, one variant per operation type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum OperationParams {
            $($variant($params),)*
        }

        impl OperationParams {
            /// Validates `params` (absent or `null` means "all defaults") for `operation`.
            pub fn parse(
                operation: OperationType,
                params: Option<serde_json::Value>,
            ) -> Result<Self, $crate::params::ParamsError> {
                let value = $crate::params::object_or_defaults(params)?;
                Ok(match operation {
                    $(OperationType::$variant => {
                        Self::$variant($crate::params::typed::<$params>(operation, value)?)
                    })*
                })
            }

            pub fn operation(&self) -> OperationType {
                match self {
                    $(Self::$variant(_) => OperationType::$variant,)*
                }
            }

            /// The type's own view of its params: checks, identity segments, run context.
            pub fn type_params(&self) -> &dyn $crate::operation::TypeParams {
                match self {
                    $(Self::$variant(p) => p,)*
                }
            }

            /// The normalized params as stored on the run (defaults filled in, keys sorted).
            pub fn to_value(&self) -> serde_json::Value {
                let v = match self {
                    $(Self::$variant(p) => serde_json::to_value(p),)*
                };
                // Plain structs of strings, bools and ids always serialize.
                v.unwrap_or(serde_json::Value::Null)
            }
        }
    };
}
pub(crate) use operations;

impl OperationType {
    /// Types whose runs a caller holding `has` may view.
    pub fn viewable_with(has: impl Fn(Capability) -> bool) -> Vec<OperationType> {
        Self::ALL
            .into_iter()
            .filter(|t| has(t.spec().view_capability))
            .collect()
    }
}

impl fmt::Display for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation type `{0}`")]
pub struct UnknownOperationType(pub String);

impl FromStr for OperationType {
    type Err = UnknownOperationType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownOperationType(s.chars().take(64).collect()))
    }
}

impl Serialize for OperationType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OperationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The registry rendered as text, one type per line; pinned by the golden test.
pub fn registry_table() -> String {
    OperationType::ALL
        .iter()
        .map(|t| {
            let s = t.spec();
            format!(
                "{} | {:?} | start={} | view={} | {:?} | {}\n",
                t.as_str(),
                s.identity_rule,
                s.start_capability,
                s.view_capability,
                s.start_surface,
                s.label
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_registry_matches_the_golden_file() {
        crate::check_golden("operations.txt", &registry_table());
    }

    #[test]
    fn type_names_round_trip() {
        for t in OperationType::ALL {
            assert_eq!(t.as_str().parse::<OperationType>(), Ok(t));
            let json = serde_json::to_string(&t).expect("serializes");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert!("inventory.Sync".parse::<OperationType>().is_err());
    }

    #[test]
    fn readonly_members_view_connection_checks_but_start_nothing() {
        use crate::capability::Role;
        let viewable = OperationType::viewable_with(|c| Role::Readonly.has(c));
        assert_eq!(viewable, vec![OperationType::ProviderConnectionVerify]);
        for t in OperationType::ALL {
            assert!(!Role::Readonly.has(t.spec().start_capability), "{t}");
        }
    }

    #[test]
    fn only_deterministic_and_strict_types_name_identity_segments() {
        // A unique-per-click type's identity is its click; a suffix would be ignored.
        for t in OperationType::ALL {
            if t.spec().identity_rule == IdentityRule::UniquePerClick
                && let Ok(p) = OperationParams::parse(t, None)
            {
                assert_eq!(p.type_params().identity_suffix(), None, "{t}");
            }
        }
    }
}
