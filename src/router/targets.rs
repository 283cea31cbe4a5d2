//! The targets that known services name, interned, with their members computed once.
//!
//! A `_target` step names targets by text (`Billing@StatServer.GA`, a skill expression...);
//! every distinct one is kept once under its Display string, with the ids of the agents that
//! are members and how many service steps name it. Membership is computed when a target is
//! first named and again for one agent when its configuration changes, never per event.
//!
//! Invariant: `member_of[agent]` is exactly the set of targets whose `members` hold `agent`,
//! and a target stays only while a step names it (`refs > 0`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Id;
use crate::domain::agent::Agent;
use crate::domain::target::Target;

/// A target in use by at least one known service, with its members memoized.
#[derive(Debug, Clone)]
pub(super) struct Interned {
    key: Id,
    pub(super) target: Target,
    /// Ids of the agents that are members.
    pub(super) members: HashSet<String>,
    /// How many service steps name this target; the entry goes when no step does.
    refs: usize,
}

/// Every interned target, and the reverse map from agents to the targets they belong to.
#[derive(Debug, Clone, Default)]
pub(super) struct Targets {
    by_key: HashMap<Id, Interned>,
    member_of: HashMap<String, HashSet<Id>>,
}

impl Targets {
    /// The interned target under `key` (its Display string).
    pub(super) fn get(&self, key: &str) -> Option<&Interned> {
        self.by_key.get(key)
    }

    /// The targets agent `id` is a member of.
    pub(super) fn of_agent(&self, id: &str) -> Option<&HashSet<Id>> {
        self.member_of.get(id)
    }

    /// One more step names `target`: shares one entry per distinct target, computing its
    /// members among `agents` the first time.
    pub(super) fn intern<'a>(
        &mut self,
        target: &Target,
        agents: impl IntoIterator<Item = &'a Agent>,
    ) -> Id {
        let text = target.to_string();
        if let Some(interned) = self.by_key.get_mut(text.as_str()) {
            interned.refs += 1;
            return interned.key.clone();
        }
        let key: Id = Arc::from(text);
        let members: HashSet<String> = agents
            .into_iter()
            .filter(|agent| agent.is_member_of(target))
            .map(|agent| agent.config.id.clone())
            .collect();
        for member in &members {
            self.member_of
                .entry(member.clone())
                .or_default()
                .insert(key.clone());
        }
        let interned = Interned {
            key: key.clone(),
            target: target.clone(),
            members,
            refs: 1,
        };
        self.by_key.insert(key.clone(), interned);
        key
    }

    /// A step no longer names the target under `key`; a target nobody names is forgotten.
    pub(super) fn release(&mut self, key: &Id) {
        let Some(interned) = self.by_key.get_mut(key) else {
            return;
        };
        interned.refs = interned.refs.saturating_sub(1);
        if interned.refs > 0 {
            return;
        }
        if let Some(gone) = self.by_key.remove(key) {
            for member in &gone.members {
                if let Some(set) = self.member_of.get_mut(member) {
                    set.remove(key);
                }
            }
        }
    }

    /// Recomputes which targets `agent` belongs to (its configuration is new or changed).
    pub(super) fn recompute(&mut self, agent: &Agent) {
        let id = &agent.config.id;
        let mut member_of = HashSet::new();
        for (key, interned) in &mut self.by_key {
            if agent.is_member_of(&interned.target) {
                interned.members.insert(id.clone());
                member_of.insert(key.clone());
            } else {
                interned.members.remove(id);
            }
        }
        self.member_of.insert(id.clone(), member_of);
    }

    /// Agent `id` is gone: it is no member of anything.
    pub(super) fn forget_agent(&mut self, id: &str) {
        for key in self.member_of.remove(id).unwrap_or_default() {
            if let Some(interned) = self.by_key.get_mut(&key) {
                interned.members.remove(id);
            }
        }
    }

    /// Checks the invariant (for the tests).
    #[cfg(test)]
    fn check(&self) {
        for (agent, keys) in &self.member_of {
            for key in keys {
                assert!(
                    self.by_key[key].members.contains(agent),
                    "{agent} lists {key} but is not among its members"
                );
            }
        }
        for (key, interned) in &self.by_key {
            assert!(interned.refs > 0, "{key} is kept with no step naming it");
            for member in &interned.members {
                assert!(
                    self.member_of
                        .get(member)
                        .is_some_and(|keys| keys.contains(key)),
                    "{member} is a member of {key} but does not list it"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::agent::AgentConfig;
    use crate::domain::time::Timestamp;

    fn agent(id: &str, groups: &[&str]) -> Agent {
        let config = AgentConfig {
            id: id.into(),
            name: id.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            place: None,
            place_groups: Vec::new(),
            skills: BTreeMap::new(),
            capacity: BTreeMap::from([("chat".into(), 1)]),
            auto_answer: false,
        };
        Agent::new(config, Timestamp::from_millis(0))
    }

    fn group(name: &str) -> Target {
        Target::parse(&format!("{name}@StatServer.GA")).expect("a target")
    }

    fn members(targets: &Targets, key: &str) -> Vec<String> {
        let mut members: Vec<String> = targets
            .get(key)
            .expect("interned")
            .members
            .iter()
            .cloned()
            .collect();
        members.sort();
        members
    }

    #[test]
    fn a_target_is_kept_once_while_a_step_names_it() {
        let agents = [agent("ann", &["Billing"]), agent("bob", &["Sales"])];
        let mut targets = Targets::default();
        let first = targets.intern(&group("Billing"), &agents);
        let second = targets.intern(&group("Billing"), &agents);
        assert!(
            Arc::ptr_eq(&first, &second),
            "one entry per distinct target"
        );
        assert_eq!(members(&targets, &first), ["ann"]);
        targets.check();
        targets.release(&first);
        assert!(targets.get(&first).is_some(), "a step still names it");
        targets.release(&first);
        assert!(targets.get(&first).is_none());
        assert!(targets.of_agent("ann").is_some_and(HashSet::is_empty));
        targets.check();
    }

    #[test]
    fn a_configuration_change_or_removal_moves_one_agent_only() {
        let mut agents = vec![agent("ann", &["Billing"]), agent("bob", &["Sales"])];
        let mut targets = Targets::default();
        let billing = targets.intern(&group("Billing"), &agents);
        let sales = targets.intern(&group("Sales"), &agents);
        agents[1].config.groups.push("Billing".into());
        targets.recompute(&agents[1]);
        targets.check();
        assert_eq!(members(&targets, &billing), ["ann", "bob"]);
        assert_eq!(members(&targets, &sales), ["bob"]);
        agents[0].config.groups.clear();
        targets.recompute(&agents[0]);
        targets.check();
        assert_eq!(members(&targets, &billing), ["bob"]);
        targets.forget_agent("bob");
        targets.check();
        assert!(members(&targets, &billing).is_empty());
        assert!(members(&targets, &sales).is_empty());
        assert!(targets.of_agent("bob").is_none());
    }
}
