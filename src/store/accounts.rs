//! Console and desktop users (`accounts` tree, keyed by user name).
//!
//! The stored value is its own type, [`StoredAccount`], not the domain's [`Account`], so that
//! renaming a domain field cannot change the bytes on disk; its golden-bytes test pins the
//! format.

use serde::{Deserialize, Serialize};

use super::codec::{self, Versioned};
use super::{Accounts, Pending, SledStore, StoreError};
use crate::domain::account::{Account, Role, Username};
use crate::domain::time::Timestamp;

/// Format 1 of a stored account. Change it only with a new format number and a migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredAccount {
    username: String,
    /// 0 administrator, 1 supervisor, 2 monitor, 3 agent.
    role: u8,
    agent_id: Option<String>,
    password_hash: String,
    created_at_ms: u64,
}

impl Versioned for StoredAccount {
    const VERSION: u8 = 1;
}

impl StoredAccount {
    fn from_account(account: &Account) -> Self {
        Self {
            username: account.username.as_str().to_string(),
            role: match account.role {
                Role::Administrator => 0,
                Role::Supervisor => 1,
                Role::Monitor => 2,
                Role::Agent => 3,
            },
            agent_id: account.agent_id.clone(),
            password_hash: account.password_hash.clone(),
            created_at_ms: account.created_at.as_millis(),
        }
    }

    /// The account, named in errors by `key`, the name it was read under: a value too damaged
    /// to trust does not get to name itself.
    fn into_account(self, key: &str) -> Result<Account, StoreError> {
        let what = || format!("account {key}");
        let role = match self.role {
            0 => Role::Administrator,
            1 => Role::Supervisor,
            2 => Role::Monitor,
            3 => Role::Agent,
            other => {
                return Err(StoreError::Corrupt {
                    what: what(),
                    reason: format!("unknown role {other}"),
                })
            }
        };
        let username = Username::parse(&self.username).map_err(|err| StoreError::Corrupt {
            what: what(),
            reason: err.message,
        })?;
        Ok(Account {
            username,
            role,
            agent_id: self.agent_id,
            password_hash: self.password_hash,
            created_at: Timestamp::from_millis(self.created_at_ms),
        })
    }
}

impl Accounts for SledStore {
    fn put_account(&self, account: &Account) -> Result<Pending<()>, StoreError> {
        let bytes = encode(account)?;
        self.inner
            .trees
            .accounts
            .insert(account.username.as_str().as_bytes(), bytes)?;
        Ok(self.pending(()))
    }

    fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        match self.inner.trees.accounts.get(username.as_bytes())? {
            Some(bytes) => Ok(Some(decode(&bytes, username)?)),
            None => Ok(None),
        }
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.inner
            .trees
            .accounts
            .iter()
            .map(|item| {
                let (key, value) = item?;
                decode(&value, &String::from_utf8_lossy(&key))
            })
            .collect()
    }

    fn delete_account(&self, username: &str) -> Result<Pending<bool>, StoreError> {
        let removed = self
            .inner
            .trees
            .accounts
            .remove(username.as_bytes())?
            .is_some();
        Ok(self.pending(removed))
    }
}

/// `account` as stored.
pub(super) fn encode(account: &Account) -> Result<Vec<u8>, StoreError> {
    codec::write(&StoredAccount::from_account(account))
}

/// An account read back; `username` (its key) names it in errors.
pub(super) fn decode(bytes: &[u8], username: &str) -> Result<Account, StoreError> {
    let stored: StoredAccount = codec::read(bytes, &format!("account {username}"))?;
    stored.into_account(username)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Found by the `stored` fuzz target: a value whose own username is not a valid name
    /// (`"\u{6}"`) was reported as "account \u{6}" instead of the account it was read as.
    #[test]
    fn an_unreadable_account_is_named_by_the_key_it_was_read_under() {
        let value = [
            0x01, 0x01, 0x06, 0x00, 0x00, 0x00, 0x11, 0x74, 0x69, 0x03, 0x01, 0x06, 0x61, 0x67,
            0x65, 0x09,
        ];
        match decode(&value, "fuzz") {
            Err(StoreError::Corrupt { what, reason }) => {
                assert_eq!(what, "account fuzz");
                assert!(!reason.is_empty());
            }
            other => panic!("expected a corrupt account, got {other:?}"),
        }
    }

    fn kristi() -> Account {
        Account {
            username: Username::parse("kristi").unwrap(),
            role: Role::Agent,
            agent_id: Some("kristi".into()),
            password_hash: "$argon2id$x".into(),
            created_at: Timestamp::from_millis(1_700_000_000_000),
        }
    }

    #[test]
    fn format_1_bytes_still_read() {
        // Written by the first release that stored accounts; must decode forever.
        let golden: &[u8] = &[
            1, 6, 107, 114, 105, 115, 116, 105, 3, 1, 6, 107, 114, 105, 115, 116, 105, 11, 36, 97,
            114, 103, 111, 110, 50, 105, 100, 36, 120, 253, 0, 104, 229, 207, 139, 1, 0, 0,
        ];
        let bytes = codec::write(&StoredAccount::from_account(&kristi())).unwrap();
        assert_eq!(bytes, golden, "the stored format of an account changed");
        assert_eq!(decode(golden, "kristi").unwrap(), kristi());
    }

    #[test]
    fn accounts_are_stored_listed_and_removed() {
        let store = Store::open_temporary().unwrap();
        store.put_account(&kristi()).unwrap().without_waiting();
        assert_eq!(store.account("kristi").unwrap(), Some(kristi()));
        assert_eq!(store.accounts().unwrap().len(), 1);
        assert!(store.delete_account("kristi").unwrap().without_waiting());
        assert!(!store.delete_account("kristi").unwrap().without_waiting());
        assert_eq!(store.account("kristi").unwrap(), None);
    }

    #[test]
    fn an_unknown_role_is_refused_loudly() {
        let mut stored = StoredAccount::from_account(&kristi());
        stored.role = 9;
        let bytes = codec::write(&stored).unwrap();
        assert!(matches!(
            decode(&bytes, "kristi"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
