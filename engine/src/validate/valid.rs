//! [`ValidPlan`]: a typed plan that passed every check of validation. Only validation builds
//! one, so compile and everything after it can rely on the plan's cross-field rules (known
//! appliances, one or two of them, a pair with failover or migration, a switch for an
//! asynchronous upgrade, …) instead of re-checking them.
//!
//! Must not: offer a way to wrap an unchecked [`Plan`], or allow mutating the plan inside.

use std::ops::Deref;

use swing_schema::Plan;

/// A plan that passed validation. Read it through `Deref` (`valid.site`, `&*valid`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPlan(Plan);

impl ValidPlan {
    /// Wraps a plan validation has just checked without errors.
    pub(super) fn checked(plan: Plan) -> ValidPlan {
        ValidPlan(plan)
    }

    /// The typed plan.
    pub fn plan(&self) -> &Plan {
        &self.0
    }

    /// The typed plan, owned.
    pub fn into_plan(self) -> Plan {
        self.0
    }
}

impl Deref for ValidPlan {
    type Target = Plan;

    fn deref(&self) -> &Plan {
        &self.0
    }
}

impl AsRef<Plan> for ValidPlan {
    fn as_ref(&self) -> &Plan {
        &self.0
    }
}
