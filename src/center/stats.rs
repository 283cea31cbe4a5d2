//! Stat Server statistics of a routing target, computed from live agent states
//! (DESIGN.md §5).

use serde::Serialize;

use crate::domain::agent::Agent;
use crate::domain::target::{Statistic, Target};

/// The statistics of one target at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// `RStatAgentsReady`: members ready for any media they handle, and not reserved.
    #[serde(rename = "RStatAgentsReady")]
    pub ready: i64,
    /// `RStatAgentsReadyvoice`: members ready for voice.
    #[serde(rename = "RStatAgentsReadyvoice")]
    pub ready_voice: i64,
    /// `RStatAgentsReadychat`: members ready for chat.
    #[serde(rename = "RStatAgentsReadychat")]
    pub ready_chat: i64,
    /// `RStatAgentsTotal`: members logged in.
    #[serde(rename = "RStatAgentsTotal")]
    pub total: i64,
    /// `StatCallsWaiting`: services waiting for this target.
    #[serde(rename = "StatCallsWaiting")]
    pub calls_waiting: i64,
}

impl Stats {
    /// The statistics of `target` over `agents`; `calls_waiting` comes from the router,
    /// which knows the services waiting for it.
    pub fn of<'a>(
        target: &Target,
        agents: impl IntoIterator<Item = &'a Agent>,
        calls_waiting: i64,
    ) -> Stats {
        let mut stats = Stats {
            calls_waiting,
            ..Stats::default()
        };
        for agent in agents.into_iter().filter(|a| a.is_member_of(target)) {
            // An agent holding a reservation is spoken for: not ready for new work.
            let free = agent.reserved.is_empty();
            stats.total += i64::from(agent.is_logged_in());
            stats.ready += i64::from(free && agent.is_ready_for_any());
            stats.ready_voice += i64::from(agent.is_available_for("voice"));
            stats.ready_chat += i64::from(agent.is_available_for("chat"));
        }
        stats
    }

    /// One statistic by name.
    pub fn get(&self, statistic: Statistic) -> i64 {
        match statistic {
            Statistic::RStatAgentsReady => self.ready,
            Statistic::RStatAgentsReadyvoice => self.ready_voice,
            Statistic::RStatAgentsReadychat => self.ready_chat,
            Statistic::RStatAgentsTotal => self.total,
            Statistic::StatCallsWaiting => self.calls_waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::agent::{AgentConfig, AgentState};
    use crate::domain::time::Timestamp;

    fn agent(id: &str, group: &str, state: AgentState, capacity: &[(&str, u32)]) -> Agent {
        let mut agent = Agent::new(
            AgentConfig {
                id: id.into(),
                name: id.into(),
                groups: vec![group.into()],
                place: None,
                place_groups: Vec::new(),
                skills: BTreeMap::from([("English".into(), 10)]),
                capacity: capacity.iter().map(|(m, n)| (m.to_string(), *n)).collect(),
                auto_answer: true,
            },
            Timestamp::from_millis(0),
        );
        agent.state = state;
        agent
    }

    #[test]
    fn statistics_count_the_targets_members_by_state_and_media() {
        let mut busy = agent("d", "Billing", AgentState::Ready, &[("chat", 1)]);
        busy.active
            .entry("chat".into())
            .or_default()
            .insert("s".into());
        let mut reserved = agent("f", "Billing", AgentState::Ready, &[("chat", 2)]);
        reserved.reserved.insert("s2".into());
        let agents = [
            agent(
                "a",
                "Billing",
                AgentState::Ready,
                &[("chat", 2), ("voice", 1)],
            ),
            agent("b", "Billing", AgentState::NotReady, &[("chat", 2)]),
            agent("c", "Billing", AgentState::LoggedOut, &[("chat", 2)]),
            busy,
            reserved,
            agent("e", "Support", AgentState::Ready, &[("voice", 1)]),
        ];
        let billing = Target::parse("Billing@StatServer.GA").unwrap();

        let stats = Stats::of(&billing, &agents, 3);

        assert_eq!(
            stats,
            Stats {
                ready: 1,
                ready_voice: 1,
                ready_chat: 1,
                total: 4,
                calls_waiting: 3
            }
        );
        assert_eq!(stats.get(Statistic::RStatAgentsTotal), 4);
        let skill = Target::parse("?:English>=10@StatServer.GA").unwrap();
        assert_eq!(Stats::of(&skill, &agents, 0).ready, 2, "a and e");
    }
}
