//! Which agents are free for a media, longest idle first: the index the router reads to pick
//! an agent for a service without looking at every agent.
//!
//! Invariant: an agent is entered under exactly the medias it is available for now
//! ([`Agent::is_available_for`]), keyed by its current idle time, once per media; the router
//! calls [`Availability::refresh`] after every change to an agent, so the index never holds a
//! stale key.

use std::collections::{BTreeSet, HashMap};

use crate::domain::agent::Agent;
use crate::domain::time::Timestamp;

/// Available agents by media, ordered by (idle since, id): the first one a filter accepts is
/// the one idle longest, ties going to the smallest id.
#[derive(Debug, Clone, Default)]
pub(super) struct Availability {
    by_media: HashMap<String, BTreeSet<(Timestamp, String)>>,
    /// How each agent is entered now, to take it out again.
    entered: HashMap<String, (Timestamp, Vec<String>)>,
}

impl Availability {
    /// Enters agent `id` again as `agent` is now (or only takes it out when `None`: the agent
    /// is gone).
    pub(super) fn refresh(&mut self, id: &str, agent: Option<&Agent>) {
        if let Some((idle, medias)) = self.entered.remove(id) {
            for media in medias {
                if let Some(set) = self.by_media.get_mut(&media) {
                    set.remove(&(idle, id.to_owned()));
                    if set.is_empty() {
                        self.by_media.remove(&media);
                    }
                }
            }
        }
        let Some(agent) = agent else {
            return;
        };
        let medias: Vec<String> = agent
            .config
            .capacity
            .keys()
            .filter(|media| agent.is_available_for(media))
            .cloned()
            .collect();
        if medias.is_empty() {
            return;
        }
        for media in &medias {
            self.by_media
                .entry(media.clone())
                .or_default()
                .insert((agent.idle_since, id.to_owned()));
        }
        self.entered
            .insert(id.to_owned(), (agent.idle_since, medias));
    }

    /// The agent idle longest among those available for `media` that `accept` takes.
    pub(super) fn longest_idle(&self, media: &str, accept: impl Fn(&str) -> bool) -> Option<&str> {
        self.by_media
            .get(media)?
            .iter()
            .map(|(_, agent)| agent.as_str())
            .find(|agent| accept(agent))
    }

    /// The medias agent `id` is entered under, in its capacity's order (for the tests).
    #[cfg(test)]
    fn medias_of(&self, id: &str) -> Vec<String> {
        self.entered
            .get(id)
            .map(|(_, medias)| medias.clone())
            .unwrap_or_default()
    }

    /// Checks the invariant against the agents as they are.
    #[cfg(test)]
    fn check(&self, agents: &[Agent]) {
        let mut expected: HashMap<String, BTreeSet<(Timestamp, String)>> = HashMap::new();
        for agent in agents {
            for media in agent.config.capacity.keys() {
                if agent.is_available_for(media) {
                    expected
                        .entry(media.clone())
                        .or_default()
                        .insert((agent.idle_since, agent.config.id.clone()));
                }
            }
        }
        assert_eq!(self.by_media, expected);
        let entered: usize = self.entered.values().map(|(_, m)| m.len()).sum();
        let indexed: usize = self.by_media.values().map(BTreeSet::len).sum();
        assert_eq!(entered, indexed, "every entry is known to its agent");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::agent::{AgentConfig, AgentState};

    fn agent(id: &str, idle_secs: u64) -> Agent {
        let config = AgentConfig {
            id: id.into(),
            name: id.into(),
            groups: Vec::new(),
            place: None,
            place_groups: Vec::new(),
            skills: BTreeMap::new(),
            capacity: BTreeMap::from([("chat".into(), 1), ("voice".into(), 1)]),
            auto_answer: false,
        };
        let mut agent = Agent::new(config, Timestamp::from_millis(idle_secs * 1000));
        agent.state = AgentState::Ready;
        agent
    }

    fn refresh_all(index: &mut Availability, agents: &[Agent]) {
        for agent in agents {
            index.refresh(&agent.config.id, Some(agent));
        }
    }

    #[test]
    fn the_longest_idle_accepted_agent_comes_first_and_ties_go_to_the_smallest_id() {
        let agents = [agent("carol", 5), agent("bob", 3), agent("ann", 3)];
        let mut index = Availability::default();
        refresh_all(&mut index, &agents);
        index.check(&agents);
        assert_eq!(index.longest_idle("chat", |_| true), Some("ann"));
        assert_eq!(index.longest_idle("chat", |a| a != "ann"), Some("bob"));
        assert_eq!(index.longest_idle("chat", |a| a == "carol"), Some("carol"));
        assert_eq!(index.longest_idle("email", |_| true), None);
    }

    #[test]
    fn every_change_to_an_agent_moves_or_removes_its_entries() {
        let mut agents = vec![agent("ann", 1), agent("bob", 2), agent("cid", 3)];
        let mut index = Availability::default();
        refresh_all(&mut index, &agents);
        index.check(&agents);

        // A reservation takes the agent out of every media.
        agents[0].reserved.insert("s1".into());
        index.refresh("ann", Some(&agents[0]));
        index.check(&agents);
        assert!(index.medias_of("ann").is_empty());
        assert_eq!(index.longest_idle("voice", |_| true), Some("bob"));

        // Freed later, idle since then: it goes to the back.
        agents[0].reserved.clear();
        agents[0].idle_since = Timestamp::from_millis(10_000);
        index.refresh("ann", Some(&agents[0]));
        index.check(&agents);
        assert_eq!(index.medias_of("ann"), ["chat", "voice"]);
        assert_eq!(
            index.longest_idle("chat", |a| a != "bob" && a != "cid"),
            Some("ann")
        );

        // Not Ready: out; a removed agent: out, and nothing is left behind for it.
        agents[1].state = AgentState::NotReady;
        index.refresh("bob", Some(&agents[1]));
        index.check(&agents);
        index.refresh("cid", None);
        agents.remove(2);
        index.check(&agents);
        assert_eq!(index.longest_idle("chat", |_| true), Some("ann"));

        // Refreshing twice changes nothing.
        index.refresh("ann", Some(&agents[0]));
        index.refresh("ann", Some(&agents[0]));
        index.check(&agents);
    }
}
