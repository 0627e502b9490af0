//! The three places traffic can go, and a value per place.

use std::fmt;
use std::ops::{Index, IndexMut};

use serde::{Deserialize, Serialize};

/// A Route53 weighted record's destination (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// The Seoul EKS cluster that serves in normal operation.
    Primary,
    /// The Singapore EKS cluster: full capacity, but may still be being built
    /// when the primary fails.
    DrEks,
    /// The Singapore ECS service: always-on, smaller warm standby.
    DrEcs,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Primary, Target::DrEks, Target::DrEcs];
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Primary => "primary",
            Target::DrEks => "DR EKS",
            Target::DrEcs => "DR ECS",
        })
    }
}

/// One value per target, with field names that serialize the way the
/// Kubernetes status and the CLI print them (`primary`, `drEks`, `drEcs`).
/// Exactly these three: a fourth (`drGke`) is refused, not ignored, so a
/// typo or a target this version cannot route to never passes silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerTarget<T> {
    pub primary: T,
    pub dr_eks: T,
    pub dr_ecs: T,
}

impl<T> PerTarget<T> {
    pub fn from_fn(mut value: impl FnMut(Target) -> T) -> Self {
        PerTarget {
            primary: value(Target::Primary),
            dr_eks: value(Target::DrEks),
            dr_ecs: value(Target::DrEcs),
        }
    }

    pub fn map<U>(&self, mut value: impl FnMut(Target, &T) -> U) -> PerTarget<U> {
        PerTarget::from_fn(|target| value(target, &self[target]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Target, &T)> {
        Target::ALL
            .into_iter()
            .map(move |target| (target, &self[target]))
    }
}

impl<T> Index<Target> for PerTarget<T> {
    type Output = T;

    fn index(&self, target: Target) -> &T {
        match target {
            Target::Primary => &self.primary,
            Target::DrEks => &self.dr_eks,
            Target::DrEcs => &self.dr_ecs,
        }
    }
}

impl<T> IndexMut<Target> for PerTarget<T> {
    fn index_mut(&mut self, target: Target) -> &mut T {
        match target {
            Target::Primary => &mut self.primary,
            Target::DrEks => &mut self.dr_eks,
            Target::DrEcs => &mut self.dr_ecs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_reaches_the_named_field() {
        let mut values = PerTarget::from_fn(|target| target as u8);
        values[Target::DrEcs] = 9;
        assert_eq!((values.primary, values.dr_eks, values.dr_ecs), (0, 1, 9));
    }

    #[test]
    fn serializes_with_camel_case_target_names() {
        let json = serde_json::to_value(PerTarget::from_fn(|t| t)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"primary": "primary", "drEks": "drEks", "drEcs": "drEcs"})
        );
    }
}
