//! The rules of membership changes, as users expect them: only members who manage members
//! change others; only owners touch owners; no one raises their own role; a workspace always
//! keeps an owner. The store enforces the same with conditions on what these rules read.

use crate::capability::{Capability, Role};

/// A change to one membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Add the user with this role, or change their role to it.
    Put(Role),
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("the actor may not manage members")]
    Forbidden,
    #[error("only owners add, change or remove owners")]
    OwnerRequired,
    #[error("members cannot raise their own role")]
    SelfPromotion,
    #[error("a workspace keeps at least one owner")]
    LastOwner,
    #[error("the user is not a member")]
    NotMember,
}

/// What a permitted change does to the number of owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permitted {
    pub owner_delta: i64,
}

/// Checks a change by `actor` (with `actor_role`) to `target`'s membership, which is
/// currently `current`, in a workspace that has `owners` owners.
pub fn check_change(
    actor_role: Role,
    actor_is_target: bool,
    current: Option<Role>,
    change: MemberChange,
    owners: u32,
) -> Result<Permitted, MembershipError> {
    let new = match change {
        MemberChange::Put(r) => Some(r),
        MemberChange::Remove => None,
    };
    if change == MemberChange::Remove && current.is_none() {
        return Err(MembershipError::NotMember);
    }
    // Checked first: whatever else applies, raising yourself is the reason it is refused.
    if let (true, Some(cur), Some(new)) = (actor_is_target, current, new)
        && new.rank() > cur.rank()
    {
        return Err(MembershipError::SelfPromotion);
    }
    // Leaving is always allowed (last-owner rule aside); everything else needs the capability.
    let leaving = actor_is_target && change == MemberChange::Remove;
    if !leaving && !actor_role.has(Capability::MembersManage) {
        return Err(MembershipError::Forbidden);
    }
    let touches_owner = current == Some(Role::Owner) || new == Some(Role::Owner);
    if touches_owner && !leaving && actor_role != Role::Owner {
        return Err(MembershipError::OwnerRequired);
    }
    let was_owner = current == Some(Role::Owner);
    let is_owner = new == Some(Role::Owner);
    let owner_delta = i64::from(is_owner) - i64::from(was_owner);
    if owner_delta < 0 && owners <= 1 {
        return Err(MembershipError::LastOwner);
    }
    Ok(Permitted { owner_delta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberChange::*;
    use Role::*;

    #[test]
    fn the_last_owner_can_be_neither_removed_nor_demoted() {
        assert_eq!(
            check_change(Owner, true, Some(Owner), Remove, 1),
            Err(MembershipError::LastOwner)
        );
        assert_eq!(
            check_change(Owner, true, Some(Owner), Put(Manager), 1),
            Err(MembershipError::LastOwner)
        );
        assert_eq!(
            check_change(Owner, false, Some(Owner), Remove, 1),
            Err(MembershipError::LastOwner)
        );
        assert_eq!(
            check_change(Owner, false, Some(Owner), Remove, 2),
            Ok(Permitted { owner_delta: -1 })
        );
    }

    #[test]
    fn only_owners_manage_owners() {
        assert_eq!(
            check_change(Manager, false, None, Put(Owner), 1),
            Err(MembershipError::OwnerRequired)
        );
        assert_eq!(
            check_change(Manager, false, Some(Owner), Put(Readonly), 2),
            Err(MembershipError::OwnerRequired)
        );
        assert_eq!(
            check_change(Manager, false, Some(Owner), Remove, 2),
            Err(MembershipError::OwnerRequired)
        );
        assert_eq!(
            check_change(Owner, false, None, Put(Owner), 1),
            Ok(Permitted { owner_delta: 1 })
        );
        assert_eq!(
            check_change(Manager, false, None, Put(Manager), 1),
            Ok(Permitted { owner_delta: 0 })
        );
    }

    #[test]
    fn no_one_raises_their_own_role_but_anyone_may_step_down_or_leave() {
        assert_eq!(
            check_change(Manager, true, Some(Manager), Put(Owner), 1),
            Err(MembershipError::SelfPromotion)
        );
        assert_eq!(
            check_change(Operator, true, Some(Operator), Put(Manager), 1),
            Err(MembershipError::SelfPromotion)
        );
        assert_eq!(
            check_change(Manager, true, Some(Manager), Put(Operator), 1),
            Ok(Permitted { owner_delta: 0 })
        );
        assert_eq!(
            check_change(Readonly, true, Some(Readonly), Remove, 1),
            Ok(Permitted { owner_delta: 0 })
        );
        assert_eq!(
            check_change(Owner, true, Some(Owner), Put(Owner), 1),
            Ok(Permitted { owner_delta: 0 })
        );
    }

    #[test]
    fn members_without_the_capability_change_no_one_else() {
        for actor in [Operator, Readonly] {
            assert_eq!(
                check_change(actor, false, Some(Readonly), Remove, 1),
                Err(MembershipError::Forbidden)
            );
            assert_eq!(
                check_change(actor, false, None, Put(Readonly), 1),
                Err(MembershipError::Forbidden)
            );
        }
        assert_eq!(
            check_change(Owner, false, None, Remove, 1),
            Err(MembershipError::NotMember)
        );
    }
}
