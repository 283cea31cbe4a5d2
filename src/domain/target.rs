//! The GMS `_target` option: where a callback or chat is routed.
//!
//! This module owns parsing and printing of
//! - one routing target string, `<name>@<StatServer>.<type>` ([`Target`]), e.g.
//!   `Billing@StatServer.GA`, or `?:English=20&;Loans=2@StatServer.GA` for a skill
//!   expression (parsed by `super::skill`);
//! - the whole `_target` option value ([`TargetList`]): either one target string, or a
//!   JSON array of 1 to [`MAX_TARGET_STEPS`] step objects tried in order, each with a
//!   timeout, a `clear` flag and an optional statistic check ([`TargetStep`]).
//!
//! It does not know which Stat Servers exist; callers check
//! [`TargetList::stat_servers`] against their configuration. Error messages say what is
//! wrong and how to fix it but do not name the option: callers prefix them with
//! "option `_target`: ".

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use thiserror::Error;

use super::skill::{SkillExpr, SkillExprError};

/// The most steps a JSON `_target` list may have.
pub const MAX_TARGET_STEPS: usize = 15;

/// What kind of object a target names; the part after the last `.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetType {
    /// `A`: one agent.
    Agent,
    /// `AP`: one agent place.
    AgentPlace,
    /// `GA`: an agent group.
    AgentGroup,
    /// `GP`: a place group.
    PlaceGroup,
    /// `GC`: a campaign group.
    CampaignGroup,
}

impl TargetType {
    /// Every target type, in the order the GMS documentation lists them.
    pub const ALL: [TargetType; 5] = [
        TargetType::Agent,
        TargetType::AgentPlace,
        TargetType::AgentGroup,
        TargetType::PlaceGroup,
        TargetType::CampaignGroup,
    ];

    /// The code used in target strings: `"A"`, `"AP"`, `"GA"`, `"GP"` or `"GC"`.
    pub fn code(&self) -> &'static str {
        match self {
            TargetType::Agent => "A",
            TargetType::AgentPlace => "AP",
            TargetType::AgentGroup => "GA",
            TargetType::PlaceGroup => "GP",
            TargetType::CampaignGroup => "GC",
        }
    }
}

/// Parses a code exactly as [`TargetType::code`] prints it (case-sensitive).
impl FromStr for TargetType {
    type Err = UnknownTargetType;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        TargetType::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
            .ok_or_else(|| UnknownTargetType {
                code: code.to_owned(),
            })
    }
}

/// Prints [`TargetType::code`].
impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The error of `TargetType::from_str`: the code is not a known target type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown target type `{code}`: use one of A, AP, GA, GP, GC")]
pub struct UnknownTargetType {
    /// The code that was given.
    pub code: String,
}

/// The part of a target before the last `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetName {
    /// A plain object name (agent, place or group), kept verbatim; may contain `@` and `.`.
    Named(String),
    /// A skill expression, written `?:<expression>` in the target string.
    Skill(SkillExpr),
}

/// One routing target, `<name>@<StatServer>.<type>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Who to route to.
    pub name: TargetName,
    /// The Stat Server that monitors the target; matches `[A-Za-z0-9_-]+`.
    pub stat_server: String,
    /// What kind of object `name` is.
    pub kind: TargetType,
}

impl Target {
    /// Parses a target string such as `Billing@StatServer.GA`.
    ///
    /// Surrounding whitespace is ignored. The string is split on its last `@`, then the
    /// remainder on its last `.`, so names may contain `@` and `.`. A name starting
    /// with `?:` is a skill expression.
    ///
    /// # Errors
    ///
    /// A [`TargetError`] when the string is empty, lacks `@` or `.Type`, has an empty
    /// name or Stat Server, a Stat Server name outside `[A-Za-z0-9_-]+`, an unknown type
    /// code, or a malformed skill expression.
    pub fn parse(s: &str) -> Result<Target, TargetError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(TargetError::Empty);
        }
        let target = || text.to_owned();

        let Some((name, location)) = text.rsplit_once('@') else {
            return Err(TargetError::MissingAt { target: target() });
        };
        if name.is_empty() {
            return Err(TargetError::EmptyName { target: target() });
        }
        let Some((stat_server, code)) = location.rsplit_once('.').filter(|(_, c)| !c.is_empty())
        else {
            return Err(TargetError::MissingType { target: target() });
        };
        if stat_server.is_empty() {
            return Err(TargetError::EmptyStatServer { target: target() });
        }
        if !stat_server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(TargetError::InvalidStatServer {
                server: stat_server.to_owned(),
                target: target(),
            });
        }
        let kind = code
            .parse::<TargetType>()
            .map_err(|_| TargetError::UnknownType {
                code: code.to_owned(),
                target: target(),
            })?;
        let name = match name.strip_prefix("?:") {
            Some(expression) => {
                let expr = SkillExpr::parse(expression).map_err(|error| TargetError::Skill {
                    target: target(),
                    error,
                })?;
                TargetName::Skill(expr)
            }
            None => TargetName::Named(name.to_owned()),
        };

        Ok(Target {
            name,
            stat_server: stat_server.to_owned(),
            kind,
        })
    }
}

/// Prints the `name@StatServer.Type` form; skill targets print as
/// `?:<canonical expression>@StatServer.Type`. Parsing the output gives the same target.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            TargetName::Named(name) => f.write_str(name)?,
            TargetName::Skill(expr) => write!(f, "?:{expr}")?,
        }
        write!(f, "@{}.{}", self.stat_server, self.kind.code())
    }
}

/// A Stat Server statistic a step may check before routing (`stat_to_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Statistic {
    /// `RStatAgentsReady`
    RStatAgentsReady,
    /// `RStatAgentsReadyvoice`
    RStatAgentsReadyvoice,
    /// `RStatAgentsReadychat`
    RStatAgentsReadychat,
    /// `RStatAgentsTotal`
    RStatAgentsTotal,
    /// `StatCallsWaiting`
    StatCallsWaiting,
}

impl Statistic {
    /// Every supported statistic.
    pub const ALL: [Statistic; 5] = [
        Statistic::RStatAgentsReady,
        Statistic::RStatAgentsReadyvoice,
        Statistic::RStatAgentsReadychat,
        Statistic::RStatAgentsTotal,
        Statistic::StatCallsWaiting,
    ];

    /// The statistic's name as written in `stat_to_check`.
    pub fn name(&self) -> &'static str {
        match self {
            Statistic::RStatAgentsReady => "RStatAgentsReady",
            Statistic::RStatAgentsReadyvoice => "RStatAgentsReadyvoice",
            Statistic::RStatAgentsReadychat => "RStatAgentsReadychat",
            Statistic::RStatAgentsTotal => "RStatAgentsTotal",
            Statistic::StatCallsWaiting => "StatCallsWaiting",
        }
    }
}

/// Parses a name exactly as [`Statistic::name`] prints it (case-sensitive).
impl FromStr for Statistic {
    type Err = UnknownStatistic;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Statistic::ALL
            .into_iter()
            .find(|statistic| statistic.name() == name)
            .ok_or_else(|| UnknownStatistic {
                name: name.to_owned(),
            })
    }
}

/// Prints [`Statistic::name`].
impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of `Statistic::from_str`: the name is not a supported statistic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown statistic `{name}`: use one of RStatAgentsReady, RStatAgentsReadyvoice, \
     RStatAgentsReadychat, RStatAgentsTotal, StatCallsWaiting (exact spelling)"
)]
pub struct UnknownStatistic {
    /// The name that was given.
    pub name: String,
}

/// How a step's statistic is compared with its `stat_value` (`stat_operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatOperator {
    /// `<`
    Less,
    /// `>`
    Greater,
}

impl StatOperator {
    /// The operator as written in `stat_operator`: `"<"` or `">"`.
    pub fn symbol(&self) -> &'static str {
        match self {
            StatOperator::Less => "<",
            StatOperator::Greater => ">",
        }
    }
}

/// A step's statistic condition: `statistic operator value`, e.g. `RStatAgentsReady < 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatCheck {
    /// Which statistic to read from the step's Stat Server.
    pub statistic: Statistic,
    /// How the observed value is compared with `value`.
    pub operator: StatOperator,
    /// The threshold.
    pub value: i64,
}

impl StatCheck {
    /// Whether `observed operator value` is true, e.g. `observed < 1`.
    ///
    /// This only evaluates the comparison; what a true or false result means for
    /// routing is the caller's decision.
    pub fn holds(&self, observed: i64) -> bool {
        match self.operator {
            StatOperator::Less => observed < self.value,
            StatOperator::Greater => observed > self.value,
        }
    }
}

/// One step of a `_target` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStep {
    /// Where to route in this step.
    pub target: Target,
    /// How long to wait on this step before the next, in seconds. 0 when the option
    /// was a single target string or the last step omitted it; the caller ignores it
    /// on the last step, which waits until the queue TTL.
    pub timeout_secs: u64,
    /// The `clear` flag of the step (default false).
    pub clear: bool,
    /// The optional statistic condition of the step.
    pub check: Option<StatCheck>,
}

/// A parsed `_target` option: 1 to [`MAX_TARGET_STEPS`] steps, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetList {
    /// Never empty, at most [`MAX_TARGET_STEPS`] long.
    steps: Vec<TargetStep>,
}

impl TargetList {
    /// Parses a `_target` option value.
    ///
    /// After trimming, a value starting with `[` is a JSON array of step objects;
    /// anything else is one target string, which becomes a single step with timeout 0,
    /// `clear` false and no statistic check.
    ///
    /// # Errors
    ///
    /// The errors of [`Target::parse`] for a single target string; for a list,
    /// [`TargetError::InvalidJson`], [`TargetError::EmptyList`],
    /// [`TargetError::TooManySteps`], or [`TargetError::Step`] naming the first bad step.
    pub fn parse(option_value: &str) -> Result<TargetList, TargetError> {
        let value = option_value.trim();
        if !value.starts_with('[') {
            let target = Target::parse(value)?;
            return Ok(TargetList {
                steps: vec![TargetStep {
                    target,
                    timeout_secs: 0,
                    clear: false,
                    check: None,
                }],
            });
        }

        let items: Vec<Value> =
            serde_json::from_str(value).map_err(|error| TargetError::InvalidJson {
                message: error.to_string(),
            })?;
        if items.is_empty() {
            return Err(TargetError::EmptyList);
        }
        if items.len() > MAX_TARGET_STEPS {
            return Err(TargetError::TooManySteps { count: items.len() });
        }
        let last = items.len() - 1;
        let steps = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                parse_step(item, index == last).map_err(|error| TargetError::Step {
                    step: index + 1,
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TargetList { steps })
    }

    /// The steps in routing order; never empty.
    pub fn steps(&self) -> &[TargetStep] {
        &self.steps
    }

    /// Each distinct Stat Server name used by the steps, in order of first use,
    /// for the caller to check against the configured Stat Servers.
    pub fn stat_servers(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(index, step)| {
                !self
                    .steps
                    .iter()
                    .take(*index)
                    .any(|earlier| earlier.target.stat_server == step.target.stat_server)
            })
            .map(|(_, step)| step.target.stat_server.as_str())
    }
}

/// Why a target string or `_target` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// The target string (or the whole value) is empty.
    #[error(
        "target is empty: write it as `<name>@<StatServer>.<type>`, e.g. `Billing@StatServer.GA`, \
         or give a JSON array of target steps"
    )]
    Empty,

    /// No `@` separates the name from the Stat Server.
    #[error(
        "target `{target}` has no `@`: write it as `<name>@<StatServer>.<type>`, \
         e.g. `Billing@StatServer.GA`"
    )]
    MissingAt {
        /// The target string.
        target: String,
    },

    /// Nothing before the last `@`.
    #[error(
        "target `{target}` has an empty name before `@`: put the agent, place or group name \
         or a `?:skill expression` there, e.g. `Billing@StatServer.GA`"
    )]
    EmptyName {
        /// The target string.
        target: String,
    },

    /// No `.Type` after the Stat Server name.
    #[error(
        "target `{target}` has no type after the StatServer name: \
         append `.` and one of A, AP, GA, GP, GC, e.g. `Billing@StatServer.GA`"
    )]
    MissingType {
        /// The target string.
        target: String,
    },

    /// The type code is not one of A, AP, GA, GP, GC.
    #[error("unknown target type `{code}` in `{target}`: use one of A, AP, GA, GP, GC")]
    UnknownType {
        /// The code after the last `.`.
        code: String,
        /// The target string.
        target: String,
    },

    /// Nothing between `@` and `.Type`.
    #[error(
        "target `{target}` has an empty StatServer name: write the Stat Server's name \
         between `@` and the type, e.g. `Billing@StatServer.GA`"
    )]
    EmptyStatServer {
        /// The target string.
        target: String,
    },

    /// The Stat Server name has characters outside `[A-Za-z0-9_-]`.
    #[error(
        "StatServer name `{server}` in `{target}` may contain only letters, digits, `_` and `-`: \
         use the Stat Server's configured name"
    )]
    InvalidStatServer {
        /// The Stat Server name as written.
        server: String,
        /// The target string.
        target: String,
    },

    /// The `?:` skill expression is malformed.
    #[error("invalid skill expression in target `{target}`: {error}")]
    Skill {
        /// The target string.
        target: String,
        /// What is wrong with the expression (already part of this error's message).
        error: SkillExprError,
    },

    /// The value starts with `[` but is not a JSON array.
    #[error(
        "value starts with `[` but is not a valid JSON array ({message}): a multi-target \
         `_target` is a JSON array of objects, e.g. \
         [{{\"target\":\"Billing@StatServer.GA\",\"timeout\":\"30\"}},{{\"target\":\"Support@StatServer.GA\"}}]"
    )]
    InvalidJson {
        /// `serde_json`'s description of the problem, with line and column.
        message: String,
    },

    /// The JSON array has no steps.
    #[error(
        "target list is empty: give at least one step, e.g. [{{\"target\":\"Billing@StatServer.GA\"}}]"
    )]
    EmptyList,

    /// The JSON array has more than [`MAX_TARGET_STEPS`] steps.
    #[error(
        "at most {max} targets are allowed in the list, got {count}: remove or merge steps",
        max = MAX_TARGET_STEPS
    )]
    TooManySteps {
        /// How many steps were given.
        count: usize,
    },

    /// One step of the JSON array is invalid.
    #[error("step {step}: {error}")]
    Step {
        /// 1-based position of the step in the array.
        step: usize,
        /// What is wrong with it (already part of this error's message).
        error: StepError,
    },
}

/// Why one step object of a JSON `_target` list is invalid; wrapped in
/// [`TargetError::Step`], which adds the step number.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StepError {
    /// The array element is not an object.
    #[error(
        "expected a JSON object, got {found}: write each step as \
         {{\"target\":\"Billing@StatServer.GA\",\"timeout\":\"30\"}}"
    )]
    NotAnObject {
        /// The kind of JSON value found, e.g. "a string".
        found: &'static str,
    },

    /// A key that steps do not have (often a typo).
    #[error(
        "unknown key `{key}`: check the spelling; valid keys are target, timeout, clear, \
         stat_to_check, stat_operator and stat_value"
    )]
    UnknownKey {
        /// The key as written.
        key: String,
    },

    /// No `target` key.
    #[error("`target` is missing: add one, e.g. \"target\":\"Billing@StatServer.GA\"")]
    MissingTarget,

    /// A key that must hold a string holds something else.
    #[error("`{key}` must be a JSON string, got {found}: put the value in double quotes")]
    NotAString {
        /// The key.
        key: &'static str,
        /// The value found, as JSON.
        found: String,
    },

    /// The `target` string is invalid.
    #[error("{error}")]
    Target {
        /// What is wrong with the target string.
        error: Box<TargetError>,
    },

    /// A step other than the last has no `timeout`.
    #[error(
        "`timeout` is missing: every step except the last needs one, e.g. \"timeout\":\"30\" (seconds)"
    )]
    MissingTimeout,

    /// `timeout` is not a non-negative whole number.
    #[error(
        "`timeout` is {value}, which is not a whole number of seconds >= 0: write it as \"30\" or 30"
    )]
    InvalidTimeout {
        /// The value found, as JSON.
        value: String,
    },

    /// `clear` is not a bool or "true"/"false".
    #[error("`clear` is {value}: write true or false (a JSON bool, or the string \"true\" or \"false\")")]
    InvalidClear {
        /// The value found, as JSON.
        value: String,
    },

    /// Some but not all of `stat_to_check`, `stat_operator`, `stat_value` are present.
    #[error(
        "statistic check is incomplete, missing {}: give stat_to_check, stat_operator and \
         stat_value together, or none of them",
        .missing.join(", ")
    )]
    IncompleteStatCheck {
        /// The keys that are missing.
        missing: Vec<&'static str>,
    },

    /// `stat_to_check` names an unsupported statistic.
    #[error("{0}")]
    UnknownStatistic(UnknownStatistic),

    /// `stat_operator` is not "<" or ">".
    #[error("`stat_operator` is {value}: use \"<\" or \">\"")]
    InvalidStatOperator {
        /// The value found, as JSON.
        value: String,
    },

    /// `stat_value` is not an integer.
    #[error("`stat_value` is {value}, which is not an integer: write it as \"1\" or 1")]
    InvalidStatValue {
        /// The value found, as JSON.
        value: String,
    },
}

/// The keys a step object may have.
const STEP_KEYS: [&str; 6] = [
    "target",
    "timeout",
    "clear",
    "stat_to_check",
    "stat_operator",
    "stat_value",
];

/// The keys that must appear together or not at all.
const STAT_KEYS: [&str; 3] = ["stat_to_check", "stat_operator", "stat_value"];

/// Parses one element of the JSON array; `is_last` relaxes the `timeout` requirement.
fn parse_step(item: &Value, is_last: bool) -> Result<TargetStep, StepError> {
    let Value::Object(fields) = item else {
        return Err(StepError::NotAnObject {
            found: json_kind(item),
        });
    };
    if let Some(key) = fields.keys().find(|key| !STEP_KEYS.contains(&key.as_str())) {
        return Err(StepError::UnknownKey { key: key.clone() });
    }

    let target_text = match fields.get("target") {
        Some(value) => string_field("target", value)?,
        None => return Err(StepError::MissingTarget),
    };
    let target = Target::parse(target_text).map_err(|error| StepError::Target {
        error: Box::new(error),
    })?;

    let timeout_secs = match fields.get("timeout") {
        Some(value) => parse_timeout(value)?,
        None if is_last => 0,
        None => return Err(StepError::MissingTimeout),
    };

    let clear = match fields.get("clear") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) if text == "true" => true,
        Some(Value::String(text)) if text == "false" => false,
        Some(other) => {
            return Err(StepError::InvalidClear {
                value: other.to_string(),
            })
        }
    };

    Ok(TargetStep {
        target,
        timeout_secs,
        clear,
        check: parse_stat_check(fields)?,
    })
}

/// `timeout`: a string of ASCII digits or a non-negative JSON integer.
fn parse_timeout(value: &Value) -> Result<u64, StepError> {
    let seconds = match value {
        Value::String(text) if is_digits(text) => text.parse::<u64>().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    };
    seconds.ok_or_else(|| StepError::InvalidTimeout {
        value: value.to_string(),
    })
}

/// The optional `stat_to_check` / `stat_operator` / `stat_value` group.
fn parse_stat_check(fields: &Map<String, Value>) -> Result<Option<StatCheck>, StepError> {
    let (statistic, operator, value) = match (
        fields.get("stat_to_check"),
        fields.get("stat_operator"),
        fields.get("stat_value"),
    ) {
        (None, None, None) => return Ok(None),
        (Some(statistic), Some(operator), Some(value)) => (statistic, operator, value),
        _ => {
            let missing = STAT_KEYS
                .into_iter()
                .filter(|key| !fields.contains_key(*key))
                .collect();
            return Err(StepError::IncompleteStatCheck { missing });
        }
    };

    let statistic = string_field("stat_to_check", statistic)?
        .parse::<Statistic>()
        .map_err(StepError::UnknownStatistic)?;
    let operator = match operator.as_str() {
        Some("<") => StatOperator::Less,
        Some(">") => StatOperator::Greater,
        _ => {
            return Err(StepError::InvalidStatOperator {
                value: operator.to_string(),
            })
        }
    };
    let parsed_value = match value {
        Value::String(text) if is_digits(text.strip_prefix('-').unwrap_or(text)) => {
            text.parse::<i64>().ok()
        }
        Value::Number(number) => number.as_i64(),
        _ => None,
    };
    let Some(value) = parsed_value else {
        return Err(StepError::InvalidStatValue {
            value: value.to_string(),
        });
    };

    Ok(Some(StatCheck {
        statistic,
        operator,
        value,
    }))
}

/// The string inside `value`, or an error naming `key`.
fn string_field<'v>(key: &'static str, value: &'v Value) -> Result<&'v str, StepError> {
    value.as_str().ok_or_else(|| StepError::NotAString {
        key,
        found: value.to_string(),
    })
}

/// Whether `text` is one or more ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// "a string", "an object", ... for error messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::skill::CompareOp;
    use super::*;

    fn named(name: &str, server: &str, kind: TargetType) -> Target {
        Target {
            name: TargetName::Named(name.to_owned()),
            stat_server: server.to_owned(),
            kind,
        }
    }

    fn skill(expression: &str, server: &str, kind: TargetType) -> Target {
        let expr = SkillExpr::parse(expression).unwrap_or_else(|e| panic!("test setup: {e}"));
        Target {
            name: TargetName::Skill(expr),
            stat_server: server.to_owned(),
            kind,
        }
    }

    fn step(target: &str, timeout_secs: u64, clear: bool, check: Option<StatCheck>) -> TargetStep {
        TargetStep {
            target: Target::parse(target).unwrap_or_else(|e| panic!("test setup: {e}")),
            timeout_secs,
            clear,
            check,
        }
    }

    fn step_error(step: usize, error: StepError) -> TargetError {
        TargetError::Step { step, error }
    }

    #[test]
    fn valid_target_strings_parse_to_name_server_and_type() {
        use TargetType::*;
        let table = [
            (
                "agent007@StatServer.A",
                named("agent007", "StatServer", Agent),
            ),
            (
                "Place_1@StatServer.AP",
                named("Place_1", "StatServer", AgentPlace),
            ),
            (
                "Billing@StatServer.GA",
                named("Billing", "StatServer", AgentGroup),
            ),
            ("Places@SS-2.GP", named("Places", "SS-2", PlaceGroup)),
            (
                "Outbound@Stat_Server.GC",
                named("Outbound", "Stat_Server", CampaignGroup),
            ),
            (
                "?:English=20&;Loans=2@StatServer.GA",
                skill("English=20&Loans=2", "StatServer", AgentGroup),
            ),
            (
                "?:Skill.A >= 1@StatServer.GA",
                skill("Skill.A>=1", "StatServer", AgentGroup),
            ),
            (
                "john@example.com@StatServer.A",
                named("john@example.com", "StatServer", Agent),
            ),
            (
                "Sales.EMEA@StatServer.GA",
                named("Sales.EMEA", "StatServer", AgentGroup),
            ),
            (
                "Billing Team@StatServer.GA",
                named("Billing Team", "StatServer", AgentGroup),
            ),
            (
                "  Billing@StatServer.GA \n",
                named("Billing", "StatServer", AgentGroup),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(Target::parse(input), Ok(expected), "parsing `{input}`");
        }
    }

    #[test]
    fn malformed_target_strings_are_rejected_with_the_offending_part() {
        let target = |s: &str| s.to_owned();
        let table = [
            ("", TargetError::Empty),
            ("   ", TargetError::Empty),
            (
                "Billing",
                TargetError::MissingAt {
                    target: target("Billing"),
                },
            ),
            (
                "Billing.GA",
                TargetError::MissingAt {
                    target: target("Billing.GA"),
                },
            ),
            (
                "Billing@StatServer",
                TargetError::MissingType {
                    target: target("Billing@StatServer"),
                },
            ),
            (
                "Billing@StatServer.",
                TargetError::MissingType {
                    target: target("Billing@StatServer."),
                },
            ),
            (
                "Billing.GA@StatServer",
                TargetError::MissingType {
                    target: target("Billing.GA@StatServer"),
                },
            ),
            (
                "Billing@StatServer.GX",
                TargetError::UnknownType {
                    code: "GX".to_owned(),
                    target: target("Billing@StatServer.GX"),
                },
            ),
            (
                "Billing@StatServer.ga",
                TargetError::UnknownType {
                    code: "ga".to_owned(),
                    target: target("Billing@StatServer.ga"),
                },
            ),
            (
                "@StatServer.GA",
                TargetError::EmptyName {
                    target: target("@StatServer.GA"),
                },
            ),
            (
                "Billing@.GA",
                TargetError::EmptyStatServer {
                    target: target("Billing@.GA"),
                },
            ),
            (
                "Billing@Stat Server.GA",
                TargetError::InvalidStatServer {
                    server: "Stat Server".to_owned(),
                    target: target("Billing@Stat Server.GA"),
                },
            ),
            (
                "Billing@Stat.Server.GA",
                TargetError::InvalidStatServer {
                    server: "Stat.Server".to_owned(),
                    target: target("Billing@Stat.Server.GA"),
                },
            ),
            (
                "Billing@Stat$erver.GA",
                TargetError::InvalidStatServer {
                    server: "Stat$erver".to_owned(),
                    target: target("Billing@Stat$erver.GA"),
                },
            ),
            (
                "?:@StatServer.GA",
                TargetError::Skill {
                    target: target("?:@StatServer.GA"),
                    error: SkillExprError::Empty,
                },
            ),
        ];
        for (input, expected) in table {
            assert_eq!(Target::parse(input), Err(expected), "parsing `{input}`");
        }
    }

    #[test]
    fn a_malformed_skill_expression_in_a_target_is_reported_with_the_target() {
        let result = Target::parse("?:English=@StatServer.GA");
        assert!(
            matches!(
                &result,
                Err(TargetError::Skill { target, error: SkillExprError::MissingLevel { .. } })
                    if target == "?:English=@StatServer.GA"
            ),
            "got {result:?}"
        );
    }

    #[test]
    fn target_display_parses_back_to_the_same_target() {
        let table = [
            ("agent007@StatServer.A", "agent007@StatServer.A"),
            ("Place_1@StatServer.AP", "Place_1@StatServer.AP"),
            ("Billing@StatServer.GA", "Billing@StatServer.GA"),
            ("Places@SS-2.GP", "Places@SS-2.GP"),
            ("Outbound@Stat_Server.GC", "Outbound@Stat_Server.GC"),
            (
                "john@example.com@StatServer.A",
                "john@example.com@StatServer.A",
            ),
            (" Billing Team@StatServer.GA ", "Billing Team@StatServer.GA"),
            (
                "?:English=20&;Loans=2@StatServer.GA",
                "?:English=20&Loans=2@StatServer.GA",
            ),
            ("?: !(a>1 | b<2) & c=3 @S.GA", "?:!(a>1|b<2)&c=3@S.GA"),
        ];
        for (input, printed) in table {
            let parsed = Target::parse(input);
            let shown = parsed.as_ref().map(ToString::to_string);
            assert_eq!(shown, Ok(printed.to_owned()), "display of `{input}`");
            assert_eq!(
                Target::parse(printed),
                parsed,
                "`{printed}` must parse back to the target parsed from `{input}`"
            );
        }
    }

    #[test]
    fn target_type_and_statistic_codes_round_trip_through_from_str() {
        for kind in TargetType::ALL {
            assert_eq!(kind.code().parse::<TargetType>(), Ok(kind), "type {kind:?}");
            assert_eq!(kind.to_string(), kind.code(), "display of {kind:?}");
        }
        for statistic in Statistic::ALL {
            assert_eq!(
                statistic.name().parse::<Statistic>(),
                Ok(statistic),
                "statistic {statistic:?}"
            );
            assert_eq!(
                statistic.to_string(),
                statistic.name(),
                "display of {statistic:?}"
            );
        }
        let bad_type = "X".parse::<TargetType>();
        assert_eq!(
            bad_type,
            Err(UnknownTargetType {
                code: "X".to_owned()
            }),
            "unknown type code"
        );
        let bad_statistic = "rstatagentsready".parse::<Statistic>();
        assert_eq!(
            bad_statistic,
            Err(UnknownStatistic {
                name: "rstatagentsready".to_owned()
            }),
            "statistic names are case-sensitive"
        );
    }

    #[test]
    fn single_target_option_values_become_one_plain_step() {
        let table = ["Billing@StatServer.GA", "  Billing@StatServer.GA\t\n"];
        for input in table {
            let list = TargetList::parse(input);
            assert_eq!(
                list.as_ref().map(TargetList::steps),
                Ok(&[step("Billing@StatServer.GA", 0, false, None)][..]),
                "parsing `{input:?}`"
            );
        }
    }

    #[test]
    fn json_target_lists_parse_every_field_form() {
        let ready_below_one = StatCheck {
            statistic: Statistic::RStatAgentsReady,
            operator: StatOperator::Less,
            value: 1,
        };
        let table = [
            (
                r#"[{"target":"Billing@StatServer.GA","timeout":"30","clear":false,"stat_to_check":"RStatAgentsReady","stat_operator":"<","stat_value":"1"},
                   {"target":"Support@StatServer.GA","timeout":"60","clear":true}]"#,
                vec![
                    step(
                        "Billing@StatServer.GA",
                        30,
                        false,
                        Some(ready_below_one.clone()),
                    ),
                    step("Support@StatServer.GA", 60, true, None),
                ],
            ),
            (
                r#"[{"target":"A1@SS.A","timeout":30,"clear":"true"},{"target":"G@SS.GA","clear":"false"}]"#,
                vec![
                    step("A1@SS.A", 30, true, None),
                    step("G@SS.GA", 0, false, None),
                ],
            ),
            (
                r#"[{"target":"G@SS.GA","timeout":"0"},{"target":"H@SS.GA","timeout":0}]"#,
                vec![
                    step("G@SS.GA", 0, false, None),
                    step("H@SS.GA", 0, false, None),
                ],
            ),
            (
                r#"[{"target":"G@SS.GA","timeout":"5","stat_to_check":"StatCallsWaiting","stat_operator":">","stat_value":-3},
                   {"target":"?:English=20&;Loans=2@SS.GA"}]"#,
                vec![
                    step(
                        "G@SS.GA",
                        5,
                        false,
                        Some(StatCheck {
                            statistic: Statistic::StatCallsWaiting,
                            operator: StatOperator::Greater,
                            value: -3,
                        }),
                    ),
                    step("?:English=20&Loans=2@SS.GA", 0, false, None),
                ],
            ),
            (
                r#"[{"target":"Only@SS.GA"}]"#,
                vec![step("Only@SS.GA", 0, false, None)],
            ),
            (
                r#"[{"target":"Last@SS.GA","timeout":"45"}]"#,
                vec![step("Last@SS.GA", 45, false, None)],
            ),
            (
                "\n  [ {\"target\" : \"G@SS.GA\"} ]  \n",
                vec![step("G@SS.GA", 0, false, None)],
            ),
        ];
        for (input, expected) in table {
            let list = TargetList::parse(input);
            assert_eq!(
                list.as_ref().map(TargetList::steps),
                Ok(&expected[..]),
                "parsing {input}"
            );
        }
    }

    /// A JSON list of `count` valid steps.
    fn list_of(count: usize) -> String {
        let steps: Vec<String> = (0..count)
            .map(|i| format!(r#"{{"target":"G{i}@SS.GA","timeout":"10"}}"#))
            .collect();
        format!("[{}]", steps.join(","))
    }

    #[test]
    fn a_list_of_fifteen_steps_is_accepted() {
        let list = TargetList::parse(&list_of(MAX_TARGET_STEPS));
        assert_eq!(
            list.map(|l| l.steps().len()),
            Ok(MAX_TARGET_STEPS),
            "15 steps is the maximum and must parse"
        );
    }

    #[test]
    fn invalid_json_target_lists_are_rejected_naming_the_step_and_problem() {
        let sixteen = list_of(MAX_TARGET_STEPS + 1);
        let table: Vec<(&str, TargetError)> = vec![
            ("[]", TargetError::EmptyList),
            (" [ ] ", TargetError::EmptyList),
            (&sixteen, TargetError::TooManySteps { count: 16 }),
            (
                r#"[{"target":"A@SS.GA"},{"target":"B@SS.GA","timeout":"5"}]"#,
                step_error(1, StepError::MissingTimeout),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":"5"},{"target":"B@SS.GA"},{"target":"C@SS.GA"}]"#,
                step_error(2, StepError::MissingTimeout),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":"-5"}]"#,
                step_error(
                    1,
                    StepError::InvalidTimeout {
                        value: r#""-5""#.to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":-5}]"#,
                step_error(
                    1,
                    StepError::InvalidTimeout {
                        value: "-5".to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":"30s"}]"#,
                step_error(
                    1,
                    StepError::InvalidTimeout {
                        value: r#""30s""#.to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":1.5}]"#,
                step_error(
                    1,
                    StepError::InvalidTimeout {
                        value: "1.5".to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":""}]"#,
                step_error(
                    1,
                    StepError::InvalidTimeout {
                        value: r#""""#.to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","clear":"yes"}]"#,
                step_error(
                    1,
                    StepError::InvalidClear {
                        value: r#""yes""#.to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","clear":1}]"#,
                step_error(
                    1,
                    StepError::InvalidClear {
                        value: "1".to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","stat_to_check":"RStatAgentReady","stat_operator":"<","stat_value":"1"}]"#,
                step_error(
                    1,
                    StepError::UnknownStatistic(UnknownStatistic {
                        name: "RStatAgentReady".to_owned(),
                    }),
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","stat_to_check":"RStatAgentsReady","stat_operator":"<=","stat_value":"1"}]"#,
                step_error(
                    1,
                    StepError::InvalidStatOperator {
                        value: r#""<=""#.to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","stat_to_check":"RStatAgentsReady","stat_operator":"<","stat_value":"one"}]"#,
                step_error(
                    1,
                    StepError::InvalidStatValue {
                        value: r#""one""#.to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","stat_to_check":"RStatAgentsReady"}]"#,
                step_error(
                    1,
                    StepError::IncompleteStatCheck {
                        missing: vec!["stat_operator", "stat_value"],
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","stat_value":3}]"#,
                step_error(
                    1,
                    StepError::IncompleteStatCheck {
                        missing: vec!["stat_to_check", "stat_operator"],
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":"5"},{"target":"B@SS.GA","tiemout":"5"}]"#,
                step_error(
                    2,
                    StepError::UnknownKey {
                        key: "tiemout".to_owned(),
                    },
                ),
            ),
            (
                r#"[{"timeout":"5"}]"#,
                step_error(1, StepError::MissingTarget),
            ),
            (
                r#"[{"target":42}]"#,
                step_error(
                    1,
                    StepError::NotAString {
                        key: "target",
                        found: "42".to_owned(),
                    },
                ),
            ),
            (
                r#"[{"target":"A@SS.GA","stat_to_check":1,"stat_operator":"<","stat_value":"1"}]"#,
                step_error(
                    1,
                    StepError::NotAString {
                        key: "stat_to_check",
                        found: "1".to_owned(),
                    },
                ),
            ),
            (
                r#"["Billing@StatServer.GA"]"#,
                step_error(1, StepError::NotAnObject { found: "a string" }),
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":"5"},{"target":"A@SS.GA","timeout":"5"},{"target":"Billing@StatServer.GX"}]"#,
                step_error(
                    3,
                    StepError::Target {
                        error: Box::new(TargetError::UnknownType {
                            code: "GX".to_owned(),
                            target: "Billing@StatServer.GX".to_owned(),
                        }),
                    },
                ),
            ),
            (
                r#"[{"target":""}]"#,
                step_error(
                    1,
                    StepError::Target {
                        error: Box::new(TargetError::Empty),
                    },
                ),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(TargetList::parse(input), Err(expected), "parsing {input}");
        }
    }

    #[test]
    fn values_starting_with_a_bracket_that_are_not_json_arrays_report_serde_and_the_hint() {
        let deeply_nested = "[".repeat(100_000);
        let table = [
            "[",
            "[{\"target\":\"A@SS.GA\",}]",
            "[VIP]Billing@StatServer.GA",
            "[{\"target\":\"A@SS.GA\"}] trailing",
            deeply_nested.as_str(),
        ];
        for input in table {
            let result = TargetList::parse(input);
            let message = result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                matches!(result, Err(TargetError::InvalidJson { .. })),
                "`{}` must be InvalidJson, got {result:?}",
                input.get(..40).unwrap_or(input)
            );
            assert!(
                message.contains("line 1 column") && message.contains("JSON array of objects"),
                "message must carry serde_json's position and the hint, got: {}",
                message.get(..300).unwrap_or(&message)
            );
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong_and_how_to_fix_it() {
        let table = [
            (
                "Billing@StatServer.GX",
                "unknown target type `GX` in `Billing@StatServer.GX`: use one of A, AP, GA, GP, GC",
            ),
            (
                &list_of(16) as &str,
                "at most 15 targets are allowed in the list, got 16: remove or merge steps",
            ),
            (
                r#"[{"target":"A@SS.GA","timeout":"5"},{"target":"A@SS.GA","timeout":"5"},{"target":"B@Stat Server.GA"}]"#,
                "step 3: StatServer name `Stat Server` in `B@Stat Server.GA` may contain only letters, digits, `_` and `-`: use the Stat Server's configured name",
            ),
            (
                r#"[{"target":"A@SS.GA","stat_value":3}]"#,
                "step 1: statistic check is incomplete, missing stat_to_check, stat_operator: give stat_to_check, stat_operator and stat_value together, or none of them",
            ),
            (
                r#"[{"target":"A@SS.GA","stat_to_check":"X","stat_operator":"<","stat_value":1}]"#,
                "step 1: unknown statistic `X`: use one of RStatAgentsReady, RStatAgentsReadyvoice, RStatAgentsReadychat, RStatAgentsTotal, StatCallsWaiting (exact spelling)",
            ),
            (
                r#"[{"target":"A@SS.GA","tiemout":"5"}]"#,
                "step 1: unknown key `tiemout`: check the spelling; valid keys are target, timeout, clear, stat_to_check, stat_operator and stat_value",
            ),
            (
                r#"[{"target":"A@SS.GA"},{"target":"B@SS.GA"}]"#,
                "step 1: `timeout` is missing: every step except the last needs one, e.g. \"timeout\":\"30\" (seconds)",
            ),
            (
                "?:English=@S.GA",
                "invalid skill expression in target `?:English=@S.GA`: comparison `English=` has no level at byte 8 of `English=`: write an integer right after `=`, e.g. `English=5`",
            ),
        ];
        for (input, expected) in table {
            let message = TargetList::parse(input).err().map(|e| e.to_string());
            assert_eq!(message.as_deref(), Some(expected), "message for {input}");
            assert!(
                !expected.starts_with("option") && !expected.starts_with("_target"),
                "messages must not start with the option name: {expected}"
            );
        }
    }

    #[test]
    fn stat_servers_lists_each_server_once_in_order_of_first_use() {
        let table = [
            ("Billing@SS1.GA", vec!["SS1"]),
            (
                r#"[{"target":"A@SS1.GA","timeout":1},{"target":"B@SS2.GA","timeout":1},{"target":"C@SS1.GA","timeout":1},{"target":"D@SS3.A"}]"#,
                vec!["SS1", "SS2", "SS3"],
            ),
        ];
        for (input, expected) in table {
            let servers = TargetList::parse(input)
                .map(|list| list.stat_servers().map(str::to_owned).collect::<Vec<_>>());
            assert_eq!(
                servers,
                Ok(expected.iter().map(|s| s.to_string()).collect()),
                "servers of {input}"
            );
        }
    }

    #[test]
    fn stat_check_holds_compares_the_observed_value_with_the_threshold() {
        let check = |operator, value| StatCheck {
            statistic: Statistic::RStatAgentsReady,
            operator,
            value,
        };
        let table = [
            (check(StatOperator::Less, 1), 0, true),
            (check(StatOperator::Less, 1), 1, false),
            (check(StatOperator::Less, 1), 2, false),
            (check(StatOperator::Greater, 5), 6, true),
            (check(StatOperator::Greater, 5), 5, false),
            (check(StatOperator::Greater, -1), 0, true),
        ];
        for (stat_check, observed, expected) in table {
            assert_eq!(
                stat_check.holds(observed),
                expected,
                "{} {} {} with observed {observed}",
                stat_check.statistic,
                stat_check.operator.symbol(),
                stat_check.value
            );
        }
    }

    #[test]
    fn odd_option_values_never_panic() {
        let inputs = [
            "@",
            ".",
            "@.",
            "?:",
            "?:@.",
            "a@b.",
            "@@@...",
            "é@é.é",
            "?:é=1@S.GA",
            "[{}]",
            "[null]",
            "[[]]",
            "[{\"target\":null}]",
            "\u{0}",
            "[1,2,3]",
            "?:((((@S.GA",
        ];
        for input in inputs {
            let result = TargetList::parse(input);
            assert!(
                result.is_err(),
                "`{input}` should be rejected, got {result:?}"
            );
        }
        let skill_target = Target::parse("?:a=1@S.GA").map(|t| t.name);
        assert_eq!(
            skill_target,
            Ok(TargetName::Skill(SkillExpr::Compare {
                skill: "a".to_owned(),
                op: CompareOp::Eq,
                level: 1
            })),
            "a minimal skill target parses"
        );
    }
}
