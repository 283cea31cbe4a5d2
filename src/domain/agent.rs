//! Agents: who they are (configuration), what they are doing (live state), and which routing
//! targets they belong to. Pure: no I/O, time passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::domain::target::{Target, TargetName, TargetType};
use crate::domain::time::Timestamp;

/// An agent as configured (`PUT /genesys/1/admin/agents/{id}`, `data/agents.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Unique id, used in URLs and as the `A` target name.
    pub id: String,
    /// Display name (the nickname shown in chats).
    pub name: String,
    /// Agent groups (`GA` and `GC` targets).
    pub groups: Vec<String>,
    /// The place the agent sits at (`AP` target).
    pub place: Option<String>,
    /// Place groups of that place (`GP` targets).
    pub place_groups: Vec<String>,
    /// Skill levels (`?:English>=5` targets).
    pub skills: BTreeMap<String, i64>,
    /// Interactions the agent handles at once, per media (`{"chat":2,"voice":1}`).
    pub capacity: BTreeMap<String, u32>,
    /// Joins routed chats without an explicit accept.
    pub auto_answer: bool,
}

/// What an agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Not working: counts nowhere.
    LoggedOut,
    /// Logged in, not taking work.
    NotReady,
    /// Logged in and taking work.
    Ready,
}

impl AgentState {
    /// The wire name (`ready`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::NotReady => "not_ready",
            AgentState::Ready => "ready",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ready" => Ok(AgentState::Ready),
            "not_ready" => Ok(AgentState::NotReady),
            "logged_out" => Ok(AgentState::LoggedOut),
            other => Err(format!(
                "`{other}` is not an agent state: use ready, not_ready or logged_out"
            )),
        }
    }
}

/// What is stored of an agent: its configuration and state. Reservations and active
/// interactions are not stored here: they follow from the services that name the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// Configuration.
    pub config: AgentConfig,
    /// Last state.
    pub state: AgentState,
    /// When `state` was entered.
    pub state_since: Timestamp,
    /// When the agent last became free for work.
    pub idle_since: Timestamp,
    /// The reason code of a Not Ready state (`Break`), if the agent gave one; `None` in the
    /// other states.
    pub reason: Option<String>,
}

/// The longest reason code accepted.
pub const MAX_REASON_LEN: usize = 64;

/// Reads the optional reason code of a state change: trimmed, empty means none; only Not
/// Ready takes one.
///
/// # Errors
/// `(field, message)`: a reason with another state, too long, or with control characters.
pub fn parse_reason(
    state: AgentState,
    reason: Option<&str>,
) -> Result<Option<String>, (String, String)> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let bad = |message: String| Err(("reason".to_string(), message));
    if state != AgentState::NotReady {
        return bad(format!(
            "a reason code goes with not_ready only, not with {state}: leave it out"
        ));
    }
    if reason.chars().count() > MAX_REASON_LEN {
        return bad(format!(
            "a reason code has at most {MAX_REASON_LEN} characters"
        ));
    }
    if reason.chars().any(char::is_control) {
        return bad("a reason code is one line of text, without control characters".into());
    }
    Ok(Some(reason.to_string()))
}

impl AgentRecord {
    /// The live agent this record describes, with no work yet.
    pub fn into_agent(self) -> Agent {
        Agent {
            config: self.config,
            state: self.state,
            state_since: self.state_since,
            idle_since: self.idle_since,
            reason: self.reason,
            reserved: BTreeSet::new(),
            active: BTreeMap::new(),
        }
    }
}

impl From<&Agent> for AgentRecord {
    fn from(agent: &Agent) -> Self {
        Self {
            config: agent.config.clone(),
            state: agent.state,
            state_since: agent.state_since,
            idle_since: agent.idle_since,
            reason: agent.reason.clone(),
        }
    }
}

impl AgentConfig {
    /// Checks the id, name, capacities and media names.
    ///
    /// # Errors
    /// A message naming the bad field and how to fix it.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let ok_id = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok_id {
            return Err((
                "id".into(),
                format!(
                    "`{}` is not a usable agent id: use 1-64 letters, digits, `-`, `_` or `.`",
                    self.id
                ),
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return Err((
                "name".into(),
                "give a display name of 1-128 characters".into(),
            ));
        }
        for (media, capacity) in &self.capacity {
            if media.is_empty() || !media.chars().all(|c| c.is_ascii_lowercase()) {
                return Err((
                    format!("capacity.{media}"),
                    "media names are lowercase words such as chat or voice".into(),
                ));
            }
            if *capacity > 100 {
                return Err((
                    format!("capacity.{media}"),
                    format!("{capacity} interactions at once is too many: use 0-100"),
                ));
            }
        }
        for group in self.groups.iter().chain(&self.place_groups) {
            if group.trim().is_empty() {
                return Err(("groups".into(), "group names cannot be empty".into()));
            }
        }
        Ok(())
    }
}

/// An agent with its live state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Configuration.
    pub config: AgentConfig,
    /// Current state.
    pub state: AgentState,
    /// When `state` was entered.
    pub state_since: Timestamp,
    /// When the agent last became free for work (ready, or finished or released work):
    /// the longest-idle agent is the one with the oldest `idle_since`.
    pub idle_since: Timestamp,
    /// The reason code of a Not Ready state, if one was given.
    pub reason: Option<String>,
    /// Services reserved for this agent, waiting for the customer (at most one at a time).
    pub reserved: BTreeSet<String>,
    /// Interactions in progress, per media, with their service ids.
    pub active: BTreeMap<String, BTreeSet<String>>,
}

impl Agent {
    /// A newly configured agent: logged out until told otherwise.
    pub fn new(config: AgentConfig, now: Timestamp) -> Self {
        Self {
            config,
            state: AgentState::LoggedOut,
            state_since: now,
            idle_since: now,
            reason: None,
            reserved: BTreeSet::new(),
            active: BTreeMap::new(),
        }
    }

    /// Logged in (ready or not ready).
    pub fn is_logged_in(&self) -> bool {
        self.state != AgentState::LoggedOut
    }

    /// Interactions of `media` in progress.
    pub fn active_count(&self, media: &str) -> u32 {
        self.active.get(media).map_or(0, |s| s.len() as u32)
    }

    /// Ready, with room for one more interaction of `media`.
    pub fn is_ready_for(&self, media: &str) -> bool {
        self.state == AgentState::Ready
            && self.active_count(media) < self.config.capacity.get(media).copied().unwrap_or(0)
    }

    /// Ready for at least one media it has capacity for.
    pub fn is_ready_for_any(&self) -> bool {
        self.config
            .capacity
            .keys()
            .any(|media| self.is_ready_for(media))
    }

    /// Can be reserved for a `media` interaction now (DESIGN.md §5: logged in, ready, free
    /// capacity for the media, not reserved).
    pub fn is_available_for(&self, media: &str) -> bool {
        self.reserved.is_empty() && self.is_ready_for(media)
    }

    /// Whether the agent is part of `target`.
    pub fn is_member_of(&self, target: &Target) -> bool {
        let config = &self.config;
        match (&target.name, target.kind) {
            (TargetName::Skill(expr), _) => {
                expr.matches(|skill: &str| config.skills.get(skill).copied())
            }
            (TargetName::Named(name), TargetType::Agent) => config.id == *name,
            (TargetName::Named(name), TargetType::AgentPlace) => {
                config.place.as_deref() == Some(name.as_str())
            }
            (TargetName::Named(name), TargetType::AgentGroup | TargetType::CampaignGroup) => {
                config.groups.iter().any(|g| g == name)
            }
            (TargetName::Named(name), TargetType::PlaceGroup) => {
                config.place_groups.iter().any(|g| g == name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        let config = AgentConfig {
            id: "kristi".into(),
            name: "Kristi Sippola".into(),
            groups: vec!["Billing".into()],
            place: Some("place_101".into()),
            place_groups: vec!["Floor1".into()],
            skills: BTreeMap::from([("English".into(), 20), ("Loans".into(), 2)]),
            capacity: BTreeMap::from([("chat".into(), 2), ("voice".into(), 1)]),
            auto_answer: true,
        };
        Agent::new(config, Timestamp::from_millis(0))
    }

    #[test]
    fn membership_follows_the_target_type() {
        let a = agent();
        let cases = [
            ("kristi@StatServer.A", true),
            ("other@StatServer.A", false),
            ("place_101@StatServer.AP", true),
            ("Billing@StatServer.GA", true),
            ("Support@StatServer.GA", false),
            ("Billing@StatServer.GC", true),
            ("Floor1@StatServer.GP", true),
            ("?:English=20&;Loans=2@StatServer.GA", true),
            ("?:English>20@StatServer.GA", false),
            ("?:Spanish>0|Loans>1@StatServer.GA", true),
        ];
        for (target, expected) in cases {
            let target = Target::parse(target).unwrap();
            assert_eq!(a.is_member_of(&target), expected, "{target}");
        }
    }

    #[test]
    fn a_new_agent_is_logged_out_and_capacity_limits_readiness() {
        let mut a = agent();
        assert_eq!(a.state, AgentState::LoggedOut);
        assert!(!a.is_available_for("chat"));

        a.state = AgentState::Ready;
        assert!(a.is_available_for("chat"));
        assert!(!a.is_available_for("email"), "no capacity for email");
        a.active
            .entry("chat".into())
            .or_default()
            .extend(["s1".to_string(), "s2".to_string()]);
        assert!(!a.is_ready_for("chat"), "two chats fill a capacity of 2");
        assert!(a.is_ready_for("voice"));
        assert!(a.is_ready_for_any());

        a.reserved.insert("s3".into());
        assert!(
            !a.is_available_for("voice"),
            "a pending reservation blocks more"
        );
    }

    #[test]
    fn states_parse_from_the_wire_names() {
        for state in [
            AgentState::Ready,
            AgentState::NotReady,
            AgentState::LoggedOut,
        ] {
            assert_eq!(state.as_str().parse::<AgentState>(), Ok(state));
        }
        assert!("busy".parse::<AgentState>().unwrap_err().contains("ready"));
    }

    #[test]
    fn a_reason_code_goes_with_not_ready_only() {
        let not_ready = AgentState::NotReady;
        assert_eq!(
            parse_reason(not_ready, Some(" Lunch ")),
            Ok(Some("Lunch".into()))
        );
        assert_eq!(parse_reason(not_ready, Some("  ")), Ok(None));
        assert_eq!(parse_reason(not_ready, None), Ok(None));
        assert_eq!(parse_reason(AgentState::Ready, None), Ok(None));
        for (state, reason) in [
            (AgentState::Ready, "Lunch".to_string()),
            (not_ready, "x".repeat(MAX_REASON_LEN + 1)),
            (not_ready, "two\nlines".to_string()),
        ] {
            let (field, _) = parse_reason(state, Some(&reason)).unwrap_err();
            assert_eq!(field, "reason", "{state} {reason:?}");
        }
    }
}
