//! People who sign in to the console and the agent desktop: their names, roles and what each
//! role may do. Pure rules; hashing and storage live in `app::accounts` and `store`.
//!
//! Roles follow GMS's Callback UI (Administrator, Supervisor, Monitor) plus Agent, whose
//! account is bound to one agent of the embedded contact center.

use std::fmt;

use super::options::FieldError;
use super::time::Timestamp;

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, users and configured services included.
    Administrator,
    /// Create, cancel, reschedule and export callbacks; set agents' states.
    Supervisor,
    /// Read only.
    Monitor,
    /// The agent desktop, as its own agent only.
    Agent,
}

impl Role {
    /// Every role, in the order pages list them.
    pub const ALL: [Role; 4] = [
        Role::Administrator,
        Role::Supervisor,
        Role::Monitor,
        Role::Agent,
    ];

    /// Parses `administrator`, `supervisor`, `monitor` or `agent` (any case).
    ///
    /// # Errors
    /// Any other word, with a message naming the `role` field.
    pub fn parse(text: &str) -> Result<Role, FieldError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                FieldError::new(
                    "role",
                    format!(
                        "`{text}` is not a role: use administrator, supervisor, monitor or agent"
                    ),
                )
            })
    }

    /// The role's name in lower case, as the CLI and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Supervisor => "supervisor",
            Role::Monitor => "monitor",
            Role::Agent => "agent",
        }
    }

    /// The role's name as pages show it.
    pub fn title(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::Supervisor => "Supervisor",
            Role::Monitor => "Monitor",
            Role::Agent => "Agent",
        }
    }

    /// Whether this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Administrator => true,
            Role::Supervisor => matches!(
                action,
                Action::View | Action::ManageCallbacks | Action::SetAgentState
            ),
            Role::Monitor => action == Action::View,
            // An agent's rights are its own agent's desktop, checked by agent id.
            Role::Agent => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// Something a console user asks to do, as the role check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See callbacks, queues, agents, services and health.
    View,
    /// Create, cancel, reschedule, edit and export callbacks.
    ManageCallbacks,
    /// Set an agent's state (ready, not ready, logged out).
    SetAgentState,
    /// Create, change and delete agents.
    ConfigureAgents,
    /// Create, change and delete configured services.
    ConfigureServices,
    /// Create, change and delete users.
    ManageUsers,
}

impl Action {
    /// The least powerful console role that may do this, for the 403 page's "which role would".
    pub fn least_role(self) -> Role {
        [Role::Monitor, Role::Supervisor, Role::Administrator]
            .into_iter()
            .find(|role| role.allows(self))
            .unwrap_or(Role::Administrator)
    }

    /// What the action is, in words, for the 403 page.
    pub fn describe(self) -> &'static str {
        match self {
            Action::View => "view the console",
            Action::ManageCallbacks => "create, cancel, reschedule or export callbacks",
            Action::SetAgentState => "set an agent's state",
            Action::ConfigureAgents => "create, change or delete agents",
            Action::ConfigureServices => "create, change or delete configured services",
            Action::ManageUsers => "manage users",
        }
    }
}

/// A user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Username(String);

impl Username {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks a user name.
    ///
    /// # Errors
    /// Empty, too long, or a character outside the allowed set; the error names `username`.
    pub fn parse(text: &str) -> Result<Username, FieldError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(FieldError::new("username", "give a user name"));
        }
        if text.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "username",
                format!("a user name is at most {} characters", Self::MAX_LEN),
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
        {
            return Err(FieldError::new(
                "username",
                format!("`{bad}` is not allowed in a user name: use letters, digits, `.`, `_`, `-` and `@`"),
            ));
        }
        Ok(Username(text.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password's length.
///
/// # Errors
/// Shorter than [`MIN_PASSWORD_CHARS`] characters or longer than [`MAX_PASSWORD_BYTES`]; the
/// error names `password`.
pub fn check_new_password(password: &str) -> Result<(), FieldError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            format!("a password has at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(FieldError::new(
            "password",
            format!("a password is at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A user account as the use cases see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The sign-in name.
    pub username: Username,
    /// What the user may do.
    pub role: Role,
    /// The agent this account acts as; set exactly when `role` is [`Role::Agent`].
    pub agent_id: Option<String>,
    /// The password's PHC string (argon2id), never the password.
    pub password_hash: String,
    /// When the account was created.
    pub created_at: Timestamp,
}

/// Checks that an agent account names its agent and that other roles name none.
///
/// # Errors
/// A mismatch, naming the `agent` field.
pub fn check_agent_binding(role: Role, agent_id: Option<&str>) -> Result<(), FieldError> {
    match (role, agent_id.map(str::trim).filter(|a| !a.is_empty())) {
        (Role::Agent, None) => Err(FieldError::new(
            "agent",
            "an agent account names its agent: --agent <agent id>",
        )),
        (Role::Agent, Some(_)) => Ok(()),
        (_, Some(_)) => Err(FieldError::new(
            "agent",
            "only accounts with the agent role are bound to an agent",
        )),
        (_, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_gms_callback_ui_roles_allow() {
        use Action::*;
        let table = [
            (Role::Administrator, ManageUsers, true),
            (Role::Administrator, ConfigureServices, true),
            (Role::Supervisor, ManageCallbacks, true),
            (Role::Supervisor, SetAgentState, true),
            (Role::Supervisor, ConfigureAgents, false),
            (Role::Supervisor, ConfigureServices, false),
            (Role::Supervisor, ManageUsers, false),
            (Role::Monitor, View, true),
            (Role::Monitor, ManageCallbacks, false),
            (Role::Agent, View, false),
        ];
        for (role, action, allowed) in table {
            assert_eq!(role.allows(action), allowed, "{role:?} {action:?}");
        }
    }

    #[test]
    fn the_least_role_is_the_weakest_that_is_allowed() {
        assert_eq!(Action::View.least_role(), Role::Monitor);
        assert_eq!(Action::ManageCallbacks.least_role(), Role::Supervisor);
        assert_eq!(Action::ManageUsers.least_role(), Role::Administrator);
    }

    #[test]
    fn roles_parse_in_any_case_and_name_the_field_otherwise() {
        assert_eq!(Role::parse("Administrator").unwrap(), Role::Administrator);
        assert_eq!(Role::parse(" agent ").unwrap(), Role::Agent);
        assert_eq!(Role::parse("root").unwrap_err().field, "role");
    }

    #[test]
    fn user_names_are_short_and_plain() {
        for good in ["kristi", "a.b-c_d@x", "A1"] {
            assert!(Username::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "  ", "a b", "<script>", &"x".repeat(65)] {
            assert_eq!(
                Username::parse(bad).unwrap_err().field,
                "username",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords_have_a_minimum_and_a_maximum_length() {
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn only_agent_accounts_name_an_agent() {
        assert!(check_agent_binding(Role::Agent, Some("kristi")).is_ok());
        assert!(check_agent_binding(Role::Agent, None).is_err());
        assert!(check_agent_binding(Role::Agent, Some(" ")).is_err());
        assert!(check_agent_binding(Role::Monitor, Some("kristi")).is_err());
        assert!(check_agent_binding(Role::Monitor, None).is_ok());
    }
}
