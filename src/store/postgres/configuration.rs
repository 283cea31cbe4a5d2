//! Configured services, agents, console accounts, Storage API areas and subscriptions on
//! PostgreSQL (`migrations/postgres/0004_configuration.sql`).
//!
//! | table | key | value |
//! |---|---|---|
//! | `templates` | service name | a configured service ([`stored::template`]) |
//! | `agents` | agent id | an agent ([`stored::agent`]) |
//! | `accounts` | user name | an account (the sled engine's `accounts.rs` format) |
//! | `storage_areas`, `service_storage`, `subscriptions` | id / service id / id | `storage.rs` |
//!
//! Each value is written in the sled engine's stored format, so one conversion serves both
//! engines. The seeding marks are rows of `callbackd_meta`; the mark is claimed first in the
//! seeding transaction, so that of several nodes started together over one database exactly
//! one seeds. Lists come in key order, byte by byte, as sled's trees iterate (the keys are
//! `COLLATE "C"`).
//!
//! The sled engine's free-space floor (`min_free_bytes`) guards sled's own disk; PostgreSQL
//! manages its own, so nothing here refuses a write for space.

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::{PgStore, Tx};
use crate::domain::account::Account;
use crate::domain::agent::AgentRecord;
use crate::domain::options::ConfiguredService;
use crate::domain::time::Timestamp;
use crate::store::{accounts, stored, Accounts, Agents, Configuration, Pending, StoreError};

mod storage;

/// The `callbackd_meta` row marking the configured services seeded.
const TEMPLATES_SEEDED: &str = "templates_seeded";
/// The `callbackd_meta` row marking the agents seeded.
const AGENTS_SEEDED: &str = "agents_seeded";

/// A table of values by a text key: (key, value).
struct Keyed {
    /// The table's name.
    table: &'static str,
    /// Its key column.
    key: &'static str,
    /// What a value is called in errors, before its key ("agent kristi").
    what: &'static str,
}

/// Configured services by name.
const TEMPLATES: Keyed = Keyed {
    table: "templates",
    key: "name",
    what: "configured service",
};

/// Agents by id.
const AGENTS: Keyed = Keyed {
    table: "agents",
    key: "id",
    what: "agent",
};

/// Console and desktop accounts by user name.
const ACCOUNTS: Keyed = Keyed {
    table: "accounts",
    key: "username",
    what: "account",
};

impl Keyed {
    /// The value stored under `key`, decoded by `decode` (given the bytes and the key).
    fn get<T>(
        &self,
        store: &PgStore,
        key: &str,
        decode: impl Fn(&[u8], &str) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let statement = format!("SELECT value FROM {} WHERE {} = $1", self.table, self.key);
        let row = store.read(|sql| sql.query_opt(&statement, &[&key]))?;
        row.map(|row| decode(column(&row, 0, &self.name(key))?, key))
            .transpose()
    }

    /// Every value, in key order, decoded by `decode` (given the bytes and the key).
    fn all<T>(
        &self,
        store: &PgStore,
        decode: impl Fn(&[u8], &str) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let statement = format!(
            "SELECT {key}, value FROM {table} ORDER BY {key}",
            key = self.key,
            table = self.table
        );
        let rows = store.read(|sql| sql.query(&statement, &[]))?;
        rows.iter()
            .map(|row| {
                let key: &str = column(row, 0, self.what)?;
                decode(column(row, 1, &self.name(key))?, key)
            })
            .collect()
    }

    /// Creates or replaces the value under `key`.
    fn put(&self, tx: &Tx<'_, '_>, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let statement = format!(
            "INSERT INTO {table} ({key}, value) VALUES ($1, $2)
             ON CONFLICT ({key}) DO UPDATE SET value = EXCLUDED.value",
            key = self.key,
            table = self.table
        );
        tx.execute(&statement, &[&key, &value])?;
        Ok(())
    }

    /// Removes the value under `key`; false if there was none.
    fn delete(&self, store: &PgStore, key: &str) -> Result<Pending<bool>, StoreError> {
        let statement = format!("DELETE FROM {} WHERE {} = $1", self.table, self.key);
        store.write(|tx| Ok(tx.execute(&statement, &[&key])? > 0))
    }

    /// The value under `key`, as errors name it.
    fn name(&self, key: &str) -> String {
        format!("{} {key}", self.what)
    }
}

/// Column `index` of `row`, read as part of `what`: a column of another type than the
/// schema's is reported as damage, not a panic.
pub(super) fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    index: usize,
    what: &str,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(|err| StoreError::Corrupt {
        what: what.to_string(),
        reason: err.to_string(),
    })
}

/// `at` as a `bigint` of milliseconds. Past `i64::MAX` (some 292 million years from now) it
/// saturates, which keeps every comparison with a present-day time right.
pub(super) fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Whether the seeding mark `mark` is set.
    fn seeded(&self, mark: &str) -> Result<bool, StoreError> {
        self.read(|sql| {
            Ok(sql
                .query_opt("SELECT 1 FROM callbackd_meta WHERE name = $1", &[&mark])?
                .is_some())
        })
    }

    /// Claims the seeding mark `mark` and, if this call claimed it, stores `values` (key,
    /// bytes) in `table`, in one transaction. The mark's insert waits for any other node's
    /// seeding transaction that inserted it first: if that one commits, this one stores
    /// nothing; if it rolls back, this one seeds.
    fn seed(
        &self,
        mark: &str,
        table: &Keyed,
        values: &[(&str, Vec<u8>)],
    ) -> Result<Pending<()>, StoreError> {
        self.write(|tx| {
            let claimed = tx.execute(
                "INSERT INTO callbackd_meta (name, value) VALUES ($1, 'true')
                 ON CONFLICT (name) DO NOTHING",
                &[&mark],
            )? == 1;
            if claimed {
                for (key, bytes) in values {
                    table.put(tx, key, bytes)?;
                }
            }
            Ok(())
        })
    }
}

impl Configuration for PgStore {
    fn templates_seeded(&self) -> Result<bool, StoreError> {
        self.seeded(TEMPLATES_SEEDED)
    }

    fn seed_templates(&self, services: &[ConfiguredService]) -> Result<Pending<()>, StoreError> {
        let encoded = services
            .iter()
            .map(|s| Ok((s.name.as_str(), stored::template::encode(s)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.seed(TEMPLATES_SEEDED, &TEMPLATES, &encoded)
    }

    fn templates(&self) -> Result<Vec<ConfiguredService>, StoreError> {
        TEMPLATES.all(self, |bytes, name| {
            stored::template::decode(bytes, &TEMPLATES.name(name))
        })
    }

    fn put_template(&self, service: &ConfiguredService) -> Result<Pending<()>, StoreError> {
        let bytes = stored::template::encode(service)?;
        self.write(|tx| TEMPLATES.put(tx, &service.name, &bytes))
    }

    fn delete_template(&self, name: &str) -> Result<Pending<bool>, StoreError> {
        TEMPLATES.delete(self, name)
    }
}

impl Agents for PgStore {
    fn agents_seeded(&self) -> Result<bool, StoreError> {
        self.seeded(AGENTS_SEEDED)
    }

    fn seed_agents(&self, agents: &[AgentRecord]) -> Result<Pending<()>, StoreError> {
        let encoded = agents
            .iter()
            .map(|a| Ok((a.config.id.as_str(), stored::agent::encode(a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.seed(AGENTS_SEEDED, &AGENTS, &encoded)
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        AGENTS.all(self, |bytes, id| {
            stored::agent::decode(bytes, &AGENTS.name(id))
        })
    }

    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        AGENTS.get(self, id, |bytes, id| {
            stored::agent::decode(bytes, &AGENTS.name(id))
        })
    }

    fn put_agent(&self, agent: &AgentRecord) -> Result<Pending<()>, StoreError> {
        let bytes = stored::agent::encode(agent)?;
        self.write(|tx| AGENTS.put(tx, &agent.config.id, &bytes))
    }

    fn delete_agent(&self, id: &str) -> Result<Pending<bool>, StoreError> {
        AGENTS.delete(self, id)
    }
}

impl Accounts for PgStore {
    fn put_account(&self, account: &Account) -> Result<Pending<()>, StoreError> {
        let bytes = accounts::encode(account)?;
        self.write(|tx| ACCOUNTS.put(tx, account.username.as_str(), &bytes))
    }

    fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        ACCOUNTS.get(self, username, accounts::decode)
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        ACCOUNTS.all(self, accounts::decode)
    }

    fn delete_account(&self, username: &str) -> Result<Pending<bool>, StoreError> {
        ACCOUNTS.delete(self, username)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Barrier};

    use super::super::throwaway;
    use super::*;
    use crate::domain::account::{Role, Username};
    use crate::domain::agent::{AgentConfig, AgentState};
    use crate::domain::options::Preset;

    fn store() -> PgStore {
        PgStore::open(&throwaway::shared().fresh_database(), 4).unwrap()
    }

    fn template(name: &str, option: &str) -> ConfiguredService {
        ConfiguredService {
            name: name.into(),
            preset: Preset::ChatDelayed,
            options: BTreeMap::from([("_wait_for_agent".to_string(), option.to_string())]),
        }
    }

    fn agent(id: &str) -> AgentRecord {
        AgentRecord {
            config: AgentConfig {
                id: id.into(),
                name: format!("Agent {id}"),
                groups: vec!["Support".into()],
                place: Some(format!("place-{id}")),
                place_groups: vec![],
                skills: BTreeMap::from([("English".to_string(), 7)]),
                capacity: BTreeMap::from([("chat".to_string(), 2)]),
                auto_answer: false,
            },
            state: AgentState::NotReady,
            state_since: Timestamp::from_millis(1_000),
            idle_since: Timestamp::from_millis(500),
            reason: Some("Break".into()),
        }
    }

    fn account(name: &str) -> Account {
        Account {
            username: Username::parse(name).unwrap(),
            role: Role::Agent,
            agent_id: Some(name.into()),
            password_hash: "$argon2id$x".into(),
            created_at: Timestamp::from_millis(1_700_000_000_000),
        }
    }

    fn names(store: &PgStore) -> Vec<String> {
        store
            .templates()
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect()
    }

    /// Stores `bytes` as the value of `key` in `table`, bypassing the encoders.
    fn put_raw(store: &PgStore, table: &Keyed, key: &str, bytes: &[u8]) {
        store.transaction(|tx| table.put(tx, key, bytes)).unwrap();
    }

    #[test]
    fn templates_are_put_listed_in_name_order_replaced_and_deleted() {
        let store = store();
        for name in ["b-service", "a-service", "B-service"] {
            store
                .put_template(&template(name, "true"))
                .unwrap()
                .without_waiting();
        }
        store
            .put_template(&template("a-service", "false"))
            .unwrap()
            .without_waiting();

        assert_eq!(
            names(&store),
            ["B-service", "a-service", "b-service"],
            "byte order, as sled lists them"
        );
        let replaced = store
            .templates()
            .unwrap()
            .into_iter()
            .find(|t| t.name == "a-service");
        assert_eq!(replaced, Some(template("a-service", "false")));
        assert!(store
            .delete_template("a-service")
            .unwrap()
            .without_waiting());
        assert!(
            !store
                .delete_template("a-service")
                .unwrap()
                .without_waiting(),
            "already gone"
        );
        assert_eq!(names(&store), ["B-service", "b-service"]);
    }

    #[test]
    fn seeding_templates_stores_them_and_marks_it_done_once() {
        let store = store();
        assert!(!store.templates_seeded().unwrap());

        store
            .seed_templates(&[template("one", "true"), template("two", "true")])
            .unwrap()
            .without_waiting();
        assert!(store.templates_seeded().unwrap());
        assert_eq!(names(&store), ["one", "two"]);

        store
            .seed_templates(&[template("three", "true")])
            .unwrap()
            .without_waiting();
        assert_eq!(names(&store), ["one", "two"], "seeded once only");
    }

    #[test]
    fn seeding_nothing_still_marks_it_done() {
        let store = store();
        store.seed_templates(&[]).unwrap().without_waiting();
        store.seed_agents(&[]).unwrap().without_waiting();
        assert!(store.templates_seeded().unwrap());
        assert!(store.agents_seeded().unwrap());
        assert!(store.templates().unwrap().is_empty());
    }

    #[test]
    fn nodes_started_together_seed_once() {
        let url = throwaway::shared().fresh_database();
        let nodes: Vec<PgStore> = (0..4).map(|_| PgStore::open(&url, 2).unwrap()).collect();
        let start = Arc::new(Barrier::new(nodes.len()));
        let seeders: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(n, node)| {
                let (node, start) = (node.clone(), start.clone());
                std::thread::spawn(move || {
                    let own = [
                        template(&format!("node{n}-a"), "true"),
                        template(&format!("node{n}-b"), "true"),
                    ];
                    let agents = [agent(&format!("node{n}"))];
                    start.wait();
                    node.seed_templates(&own).unwrap().without_waiting();
                    node.seed_agents(&agents).unwrap().without_waiting();
                })
            })
            .collect();
        for seeder in seeders {
            seeder.join().unwrap();
        }

        let seeded = names(&nodes[0]);
        assert_eq!(
            seeded.len(),
            2,
            "one node's services, not a mix: {seeded:?}"
        );
        let node = &seeded[0][..seeded[0].len() - 2];
        assert_eq!(seeded, [format!("{node}-a"), format!("{node}-b")]);
        assert_eq!(nodes[0].agents().unwrap().len(), 1, "one node's agents");
    }

    #[test]
    fn agents_are_seeded_put_read_listed_and_deleted() {
        let store = store();
        assert!(!store.agents_seeded().unwrap());
        store
            .seed_agents(&[agent("kristi"), agent("bob")])
            .unwrap()
            .without_waiting();
        assert!(store.agents_seeded().unwrap());

        let mut changed = agent("kristi");
        changed.state = AgentState::Ready;
        changed.reason = None;
        store.put_agent(&changed).unwrap().without_waiting();

        assert_eq!(store.agent("kristi").unwrap(), Some(changed.clone()));
        assert_eq!(store.agent("nobody").unwrap(), None);
        assert_eq!(store.agents().unwrap(), [agent("bob"), changed]);
        assert!(store.delete_agent("bob").unwrap().without_waiting());
        assert!(!store.delete_agent("bob").unwrap().without_waiting());
        assert_eq!(store.agent("bob").unwrap(), None);
    }

    #[test]
    fn accounts_are_stored_listed_by_name_and_removed() {
        let store = store();
        store
            .put_account(&account("kristi"))
            .unwrap()
            .without_waiting();
        store
            .put_account(&account("anna"))
            .unwrap()
            .without_waiting();
        assert_eq!(store.account("kristi").unwrap(), Some(account("kristi")));
        assert_eq!(
            store.accounts().unwrap(),
            [account("anna"), account("kristi")]
        );
        assert!(store.delete_account("kristi").unwrap().without_waiting());
        assert!(!store.delete_account("kristi").unwrap().without_waiting());
        assert_eq!(store.account("kristi").unwrap(), None);
        assert_eq!(store.accounts().unwrap(), [account("anna")]);
    }

    #[test]
    fn values_are_stored_in_the_sled_engines_format() {
        let store = store();
        store
            .put_account(&account("kristi"))
            .unwrap()
            .without_waiting();
        let value: Vec<u8> = store
            .read(|sql| {
                sql.query_one("SELECT value FROM accounts WHERE username = 'kristi'", &[])
                    .map(|row| row.get(0))
            })
            .unwrap();
        assert_eq!(value, accounts::encode(&account("kristi")).unwrap());
    }

    #[test]
    fn an_unreadable_value_is_corrupt_and_named_by_its_key() {
        let store = store();
        put_raw(&store, &TEMPLATES, "broken", &[9, 9, 9]);
        put_raw(&store, &AGENTS, "broken", &[]);
        put_raw(&store, &ACCOUNTS, "broken", &[1]);

        let what = |result: StoreError| match result {
            StoreError::Corrupt { what, .. } => what,
            other => panic!("expected a corrupt value, got {other:?}"),
        };
        assert_eq!(
            what(store.templates().unwrap_err()),
            "configured service broken"
        );
        assert_eq!(what(store.agent("broken").unwrap_err()), "agent broken");
        assert_eq!(what(store.agents().unwrap_err()), "agent broken");
        assert_eq!(what(store.account("broken").unwrap_err()), "account broken");
        assert_eq!(what(store.accounts().unwrap_err()), "account broken");
    }
}
