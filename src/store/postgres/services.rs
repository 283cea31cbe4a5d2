//! Services, their routing history, the time index and the status outbox on PostgreSQL.
//!
//! | table | key | what |
//! |---|---|---|
//! | `services` | id | the record ([`stored::service`]), with the columns the engine finds it by |
//! | `service_agents` | agent, service id | one row per agent who handled it, with its state |
//! | `routing_history` | service id, seq | its routing events ([`stored::routing`]) |
//! | `status_outbox` | service id, seq | its status notifications ([`stored::status`]) |
//!
//! Each method does what its sled counterpart does (`mod.rs`, `routing.rs`, `by_time.rs`,
//! `by_agent.rs`, `status.rs`): a record, its `service_agents` rows, the routing events and
//! the status outbox entries of one change are written in one transaction, under the row lock
//! of the service (`SELECT ... FOR UPDATE`) when the record is read first, so that nodes
//! sharing the database never interleave their changes of one service. The sled engine's
//! separate index trees are indexes of `services` here, and its in-memory counts (active
//! services, the time index's hours) are SQL counts: several nodes change the data, so no
//! node's memory can hold them.
//!
//! Times are `bigint` milliseconds. A time past `i64::MAX` milliseconds (year 292 million; a
//! saturated `_ttl` gives one) is stored as `i64::MAX` in its column, its record keeping the
//! exact value: the columns order and compare it as the last time there is.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::{PgStore, Read, Tx};
use crate::domain::service::{
    CallbackState, RouteProgress, RoutingEvent, ServiceAccess, ServiceRecord,
};
use crate::domain::status::{Delivery, StatusNotification};
use crate::domain::status_events;
use crate::domain::time::Timestamp;
use crate::store::engine::{RoutingHistory, ServiceChange, Services, StatusOutbox, TimeIndex};
use crate::store::{
    routing, status, stored, time_counts, Database, Pending, Purged, Refusal, ServiceSummary,
    StateCounts, StoreError, TimeSelection, UpdateError,
};

/// Rows fetched per round trip when a read filters through a caller's `keep` or visits a
/// window: enough to amortise the round trip, few enough that an early stop wastes little.
const PAGE_ROWS: usize = 256;

/// Services whose outbox got entries since the status worker last looked, and the worker's
/// bell: rung after the commit that wrote them (as the sled engine's `StatusWake`).
#[derive(Debug, Default)]
pub(super) struct StatusWake {
    /// Services with new outbox entries, taken by [`StatusOutbox::status_written`].
    dirty: Mutex<BTreeSet<String>>,
    /// Wakes the worker waiting in [`StatusOutbox::status_written`]; `notify_one` keeps a
    /// permit when nobody waits yet, so a ring between its look and its wait is not lost.
    bell: tokio::sync::Notify,
}

impl StatusWake {
    /// Notes that `service_id`'s outbox got entries (call after their commit only).
    fn ring(&self, service_id: &str) {
        self.dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(service_id.to_string());
        self.bell.notify_one();
    }

    /// The services rung for since the last call.
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(
            &mut *self
                .dirty
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A time as its column stores it (see the module's documentation).
fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

/// A count or offset as a `bigint` parameter.
fn big(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// A state's name in the `state` columns: its wire name, fixed by the GMS API.
fn state_name(state: CallbackState) -> &'static str {
    state.as_str()
}

/// The state a `state` column names.
fn state_named(name: &str) -> Result<CallbackState, StoreError> {
    CallbackState::ALL
        .into_iter()
        .find(|state| state.as_str() == name)
        .ok_or_else(|| StoreError::Corrupt {
            what: "service state column".into(),
            reason: format!("unknown state {name:?}"),
        })
}

/// Column `index` of `row`, a type mismatch being an engine error rather than a panic.
fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|err| StoreError::Engine(format!("PostgreSQL column {index}: {err}")))
}

/// A time read back from its column.
fn timestamp(ms: i64, what: &str) -> Result<Timestamp, StoreError> {
    u64::try_from(ms)
        .map(Timestamp::from_millis)
        .map_err(|_| StoreError::Corrupt {
            what: what.to_string(),
            reason: format!("negative time {ms}"),
        })
}

/// The record of service `id` from its `value` column.
fn decode_service(id: &str, bytes: &[u8]) -> Result<ServiceRecord, StoreError> {
    stored::service::decode(bytes, &format!("service {id}"))
}

/// The record of a row whose first two columns are `id, value`.
fn record_of(row: &Row) -> Result<ServiceRecord, StoreError> {
    let id: &str = column(row, 0)?;
    decode_service(id, column(row, 1)?)
}

/// A status outbox entry of `service_id` from its `value` column.
fn decode_status(service_id: &str, bytes: &[u8]) -> Result<StatusNotification, StoreError> {
    stored::status::decode(
        bytes,
        &format!("status notification of service {service_id}"),
    )
}

/// Writes `records` as new rows of `services` and `service_agents`, one statement each.
fn insert_rows(tx: &Tx<'_, '_>, records: &[ServiceRecord]) -> Result<(), StoreError> {
    let values = records
        .iter()
        .map(stored::service::encode)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let names: Vec<&str> = records.iter().map(|r| r.service_name.as_str()).collect();
    let states: Vec<&str> = records.iter().map(|r| state_name(r.state)).collect();
    let customers: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.customer_number.as_deref())
        .collect();
    let owners: Vec<Option<&str>> = records.iter().map(|r| r.owner.as_deref()).collect();
    let desired: Vec<i64> = records.iter().map(|r| millis(r.desired_time)).collect();
    let expiry: Vec<i64> = records.iter().map(|r| millis(r.expire_at)).collect();
    tx.execute(
        "INSERT INTO services
             (id, service_name, state, customer_number, owner, desired_time_ms, expire_at_ms,
              value)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::bigint[], $7::bigint[], $8::bytea[])",
        &[
            &ids, &names, &states, &customers, &owners, &desired, &expiry, &values,
        ],
    )?;
    let mut agents = Vec::new();
    let mut services = Vec::new();
    let mut agent_states = Vec::new();
    for record in records {
        for agent in record.handling_agents() {
            agents.push(agent);
            services.push(record.id.as_str());
            agent_states.push(state_name(record.state));
        }
    }
    if !agents.is_empty() {
        tx.execute(
            "INSERT INTO service_agents (agent, service_id, state)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            &[&agents, &services, &agent_states],
        )?;
    }
    Ok(())
}

/// Appends `events` to the routing history of service `id`, in order.
fn append_history(tx: &Tx<'_, '_>, id: &str, events: &[RoutingEvent]) -> Result<(), StoreError> {
    for event in events {
        let value = stored::routing::encode(event)?;
        tx.execute(
            "INSERT INTO routing_history (service_id, seq, value)
             VALUES ($1, nextval('routing_history_seq'), $2)",
            &[&id, &value],
        )?;
    }
    Ok(())
}

/// Writes the status outbox entries of `after`'s change from `before` (`None`: its create);
/// whether there were any. Only for a record that reports status events.
fn outbox(
    tx: &Tx<'_, '_>,
    before: Option<&ServiceRecord>,
    after: &ServiceRecord,
) -> Result<bool, StoreError> {
    let entries = status_events::outbox_entries(before, after, || {
        let seq: i64 = column(
            &tx.query_one("SELECT nextval('status_outbox_seq')", &[])?,
            0,
        )?;
        u64::try_from(seq).map_err(|_| StoreError::Engine(format!("status_outbox_seq gave {seq}")))
    })?;
    for entry in &entries {
        let value = stored::status::encode(entry)?;
        tx.execute(
            "INSERT INTO status_outbox (service_id, seq, pending, value) VALUES ($1, $2, true, $3)",
            &[&after.id, &big(entry.seq), &value],
        )?;
    }
    Ok(!entries.is_empty())
}

/// The row of service `id`, locked until the transaction ends.
fn lock_record(tx: &Tx<'_, '_>, id: &str) -> Result<Option<ServiceRecord>, StoreError> {
    match tx.query_opt(
        "SELECT id, value FROM services WHERE id = $1 FOR UPDATE",
        &[&id],
    )? {
        Some(row) => record_of(&row).map(Some),
        None => Ok(None),
    }
}

/// What a change must know of the record as it was: its agents rows, and the record itself
/// when it reports status events (to tell which events the change implied).
struct Before {
    /// Who handled it ([`ServiceRecord::handling_agents`]).
    agents: Vec<String>,
    /// Its state, which its agents rows carry.
    state: CallbackState,
    /// The record, when it reports status events.
    reporting: Option<ServiceRecord>,
}

impl Before {
    /// What a change of `record` must know of it.
    fn of(record: &ServiceRecord) -> Self {
        Before {
            agents: record
                .handling_agents()
                .into_iter()
                .map(str::to_string)
                .collect(),
            state: record.state,
            reporting: status::reports(record).then(|| record.clone()),
        }
    }
}

/// Writes back a changed `record` (its row locked by [`lock_record`]) with its agents rows,
/// the routing events `appended` and its status outbox entries; whether it got any.
fn rewrite(
    tx: &Tx<'_, '_>,
    before: &Before,
    record: &ServiceRecord,
    appended: &[RoutingEvent],
) -> Result<bool, StoreError> {
    let value = stored::service::encode(record)?;
    tx.execute(
        "UPDATE services SET service_name = $2, state = $3, customer_number = $4, owner = $5,
             desired_time_ms = $6, expire_at_ms = $7, value = $8
         WHERE id = $1",
        &[
            &record.id,
            &record.service_name,
            &state_name(record.state),
            &record.customer_number,
            &record.owner,
            &millis(record.desired_time),
            &millis(record.expire_at),
            &value,
        ],
    )?;
    let agents = record.handling_agents();
    // A change that keeps the state and the agents (a step of routing progress) leaves the
    // agents rows alone, as the sled engine leaves its index entries.
    if before.state != record.state || before.agents != agents {
        tx.execute(
            "DELETE FROM service_agents WHERE service_id = $1 AND NOT (agent = ANY($2))",
            &[&record.id, &agents],
        )?;
        if !agents.is_empty() {
            tx.execute(
                "INSERT INTO service_agents (agent, service_id, state)
                 SELECT agent, $2, $3 FROM unnest($1::text[]) AS agent
                 ON CONFLICT (agent, service_id) DO UPDATE SET state = EXCLUDED.state",
                &[&agents, &record.id, &state_name(record.state)],
            )?;
        }
    }
    append_history(tx, &record.id, appended)?;
    match &before.reporting {
        Some(original) => outbox(tx, Some(original), record),
        None => Ok(false),
    }
}

/// One page of a paged read: given the last id read (`None` first) and the page's size,
/// rows `id, value` in id order (see [`PgStore::collect_into`]).
type PageQuery<'a> = dyn Fn(&Read<'_>, Option<&str>, i64) -> Result<Vec<Row>, StoreError> + 'a;

impl PgStore {
    /// Books `n` service records written by a committed transaction (`/metrics`' writes per
    /// create), as the sled engine does.
    fn count_record_writes(&self, n: usize) {
        self.commit_stats()
            .service_record_writes
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Reads records page by page from `page`, keeping those that pass `keep`, into
    /// `out` until it holds `limit`; true when it does.
    fn collect_into(
        &self,
        out: &mut Vec<ServiceRecord>,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
        page: &PageQuery<'_>,
    ) -> Result<bool, StoreError> {
        let rows_per_page = limit.clamp(16, PAGE_ROWS);
        let mut after: Option<String> = None;
        loop {
            if out.len() >= limit {
                return Ok(true);
            }
            let rows = self.read(|sql| page(sql, after.as_deref(), big(rows_per_page)))?;
            for row in &rows {
                let record = record_of(row)?;
                if keep(&record) {
                    out.push(record);
                    if out.len() >= limit {
                        return Ok(true);
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == rows_per_page => {
                    after = Some(column::<&str>(last, 0)?.to_string());
                }
                _ => return Ok(false),
            }
        }
    }

    /// The configured-service names that have services, in byte order: one index probe per
    /// name (a loose index scan), not a read of every row.
    fn service_names(&self) -> Result<Vec<String>, StoreError> {
        self.read(|sql| {
            sql.query(
                "WITH RECURSIVE names (name) AS (
                     SELECT min(service_name) FROM services
                     UNION ALL
                     SELECT (SELECT min(service_name) FROM services WHERE service_name > name)
                     FROM names WHERE name IS NOT NULL
                 )
                 SELECT name FROM names WHERE name IS NOT NULL",
                &[],
            )?
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect()
        })
    }

    /// Runs `work` in one transaction that a refusal of the caller's rolls back: `work`
    /// returns `Err` with the refusal, and nothing of the transaction is written.
    fn refusable_transaction<T>(
        &self,
        mut work: impl FnMut(&Tx<'_, '_>) -> Result<Result<T, Refusal>, StoreError>,
    ) -> Result<T, UpdateError<Refusal>> {
        let refused = Cell::new(None);
        let done = self.transaction(|tx| {
            // Only the attempt that commits or refuses counts (an attempt may run again).
            refused.set(None);
            match work(tx)? {
                Ok(value) => Ok(value),
                Err(refusal) => {
                    refused.set(Some(refusal));
                    // Any error rolls the transaction back; the refusal is what is returned.
                    Err(StoreError::Engine("refused".into()))
                }
            }
        });
        match (done, refused.into_inner()) {
            (_, Some(refusal)) => Err(UpdateError::Rejected(refusal)),
            (Ok(value), None) => Ok(value),
            (Err(err), None) => Err(UpdateError::Store(err)),
        }
    }
}

impl Services for PgStore {
    fn insert_service(&self, record: &ServiceRecord) -> Result<Pending<()>, StoreError> {
        self.insert_services(std::slice::from_ref(record))
    }

    fn insert_services(&self, records: &[ServiceRecord]) -> Result<Pending<()>, StoreError> {
        let outboxed = self.transaction(|tx| {
            insert_rows(tx, records)?;
            let mut outboxed = Vec::new();
            for record in records.iter().filter(|r| status::reports(r)) {
                if outbox(tx, None, record)? {
                    outboxed.push(record.id.as_str());
                }
            }
            Ok(outboxed)
        })?;
        self.count_record_writes(records.len());
        for id in outboxed {
            self.inner.status_wake.ring(id);
        }
        Ok(self.pending(()))
    }

    fn service(&self, id: &str) -> Result<Option<ServiceRecord>, StoreError> {
        self.read(|sql| {
            match sql.query_opt("SELECT id, value FROM services WHERE id = $1", &[&id])? {
                Some(row) => record_of(&row).map(Some),
                None => Ok(None),
            }
        })
    }

    fn service_access(&self, id: &str) -> Result<Option<ServiceAccess>, StoreError> {
        self.read(|sql| {
            match sql.query_opt("SELECT value FROM services WHERE id = $1", &[&id])? {
                Some(row) => {
                    stored::service::decode_access(column(&row, 0)?, &format!("service {id}"))
                        .map(Some)
                }
                None => Ok(None),
            }
        })
    }

    fn change_service(
        &self,
        id: &str,
        change: &mut ServiceChange<'_>,
    ) -> Result<Pending<Option<ServiceRecord>>, UpdateError<Refusal>> {
        let changed = self.refusable_transaction(|tx| {
            let Some(mut record) = lock_record(tx, id)? else {
                return Ok(Ok(None));
            };
            let before = Before::of(&record);
            let mut appended = Vec::new();
            if let Err(refusal) = change(&mut record, &mut appended) {
                return Ok(Err(refusal));
            }
            record.note_routing(&appended);
            let outboxed = rewrite(tx, &before, &record, &appended)?;
            Ok(Ok(Some((record, outboxed))))
        })?;
        Ok(self.pending(changed.map(|(record, outboxed)| {
            self.count_record_writes(1);
            if outboxed {
                self.inner.status_wake.ring(&record.id);
            }
            record
        })))
    }

    fn services_by_customer(
        &self,
        customer_number: &str,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let mut out = Vec::new();
        self.collect_into(&mut out, keep, limit, &|sql, after, rows| {
            sql.query(
                "SELECT id, value FROM services
                 WHERE customer_number = $1 AND ($2::text IS NULL OR id > $2)
                 ORDER BY id LIMIT $3",
                &[&customer_number, &after, &rows],
            )
        })?;
        Ok(out)
    }

    fn services_in_states(
        &self,
        service_name: Option<&str>,
        states: &[CallbackState],
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 || states.is_empty() {
            return Ok(out);
        }
        let names = match service_name {
            Some(name) => vec![name.to_string()],
            None => self.service_names()?,
        };
        // The sled engine's key order: name, then state code, then id.
        let mut states = states.to_vec();
        states.sort_by_key(|s| s.code());
        states.dedup();
        for name in &names {
            for state in &states {
                let state = state_name(*state);
                let full = self.collect_into(&mut out, keep, limit, &|sql, after, rows| {
                    sql.query(
                        "SELECT id, value FROM services
                         WHERE service_name = $1 AND state = $2 AND ($3::text IS NULL OR id > $3)
                         ORDER BY id LIMIT $4",
                        &[name, &state, &after, &rows],
                    )
                })?;
                if full {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    fn services_of_owner(
        &self,
        owner: &str,
        service_name: &str,
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let mut out = Vec::new();
        self.collect_into(&mut out, keep, limit, &|sql, after, rows| {
            sql.query(
                "SELECT id, value FROM services
                 WHERE owner = $1 AND service_name = $2 AND ($3::text IS NULL OR id > $3)
                 ORDER BY id LIMIT $4",
                &[&owner, &service_name, &after, &rows],
            )
        })?;
        Ok(out)
    }

    fn next_scheduled(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|sql| {
            let row = sql.query_one(
                "SELECT min(desired_time_ms) FROM services WHERE state = 'SCHEDULED'",
                &[],
            )?;
            column::<Option<i64>>(&row, 0)?
                .map(|ms| timestamp(ms, "desired time of a SCHEDULED service"))
                .transpose()
        })
    }

    fn due_scheduled(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        self.read(|sql| {
            sql.query(
                "SELECT id FROM services WHERE state = 'SCHEDULED' AND desired_time_ms <= $1
                 ORDER BY desired_time_ms, id LIMIT $2",
                &[&millis(now), &big(limit)],
            )?
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect()
        })
    }

    fn count_in_states(
        &self,
        service_name: &str,
        states: &[CallbackState],
        limit: usize,
    ) -> Result<usize, StoreError> {
        // State by state, as the sled engine counts (a state given twice counts twice). The
        // sled engine looks at its limit after counting a key, so a limit of 0 counts one.
        let limit = limit.max(1);
        let mut count = 0;
        for state in states {
            if count >= limit {
                break;
            }
            let row = self.read(|sql| {
                sql.query_one(
                    "SELECT count(*) FROM (
                         SELECT 1 FROM services WHERE service_name = $1 AND state = $2 LIMIT $3
                     ) AS counted",
                    &[&service_name, &state_name(*state), &big(limit - count)],
                )
            })?;
            let n: i64 = column(&row, 0)?;
            count += usize::try_from(n).unwrap_or(0);
        }
        Ok(count)
    }

    fn active_counts(&self) -> BTreeMap<String, u64> {
        let counted = self.read(|sql| {
            sql.query(
                "SELECT service_name, count(*) FROM services WHERE state <> 'COMPLETED'
                 GROUP BY service_name",
                &[],
            )?
            .iter()
            .map(|row| {
                let n: i64 = column(row, 1)?;
                Ok((column::<String>(row, 0)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<BTreeMap<_, _>, StoreError>>()
        });
        counted.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "counting the active services failed");
            BTreeMap::new()
        })
    }

    fn purge_expired(&self, now: Timestamp, limit: usize) -> Result<Pending<Purged>, StoreError> {
        let purged = self.transaction(|tx| {
            let due = tx.query(
                "SELECT id, value FROM services WHERE expire_at_ms <= $1
                 ORDER BY expire_at_ms, id LIMIT $2 FOR UPDATE",
                &[&millis(now), &big(limit)],
            )?;
            let mut removed = Vec::with_capacity(due.len());
            let mut sessions = Vec::new();
            for row in &due {
                let record = record_of(row)?;
                // Only a time past the column's range can differ from its column.
                if record.expire_at > now {
                    continue;
                }
                sessions.extend(record.chat_session_id);
                removed.push(record.id);
            }
            // The chat session is the one thing of a service no foreign key names it by;
            // its transcript goes with it, and the rest with the service row (ON DELETE
            // CASCADE: routing history, agents, status outbox, notifications, storage).
            tx.execute("DELETE FROM chat_sessions WHERE id = ANY($1)", &[&sessions])?;
            tx.execute("DELETE FROM services WHERE id = ANY($1)", &[&removed])?;
            Ok(Purged {
                scanned: due.len(),
                removed,
            })
        })?;
        Ok(self.pending(purged))
    }

    fn services_handled_by(
        &self,
        agent: &str,
        states: &[CallbackState],
        keep: &dyn Fn(&ServiceRecord) -> bool,
        limit: usize,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        let states: Vec<&str> = states.iter().map(|s| state_name(*s)).collect();
        let mut out = Vec::new();
        self.collect_into(&mut out, keep, limit, &|sql, after, rows| {
            sql.query(
                "SELECT s.id, s.value FROM service_agents a JOIN services s ON s.id = a.service_id
                 WHERE a.agent = $1 AND a.state = ANY($2)
                     AND ($3::text IS NULL OR a.service_id > $3)
                 ORDER BY a.service_id LIMIT $4",
                &[&agent, &states, &after, &rows],
            )
        })?;
        Ok(out)
    }
}

impl RoutingHistory for PgStore {
    fn routing_history(&self, id: &str) -> Result<Vec<RoutingEvent>, StoreError> {
        self.read(|sql| {
            sql.query(
                "SELECT value FROM routing_history WHERE service_id = $1 ORDER BY seq",
                &[&id],
            )?
            .iter()
            .map(|row| {
                stored::routing::decode(column(row, 0)?, &format!("routing event of service {id}"))
            })
            .collect()
        })
    }

    fn append_routing(
        &self,
        id: &str,
        events: &[RoutingEvent],
        progress: Option<&RouteProgress>,
    ) -> Result<Pending<bool>, StoreError> {
        // One transaction either way, under the record's lock: history alone when it changes
        // nothing of the record (the sled engine's first transaction), else the record's
        // own change with its history (its `append_routing_to_record`).
        let done = self.transaction(|tx| {
            let Some(mut record) = lock_record(tx, id)? else {
                return Ok(None);
            };
            if !record.is_active() {
                return Ok(None);
            }
            if !routing::changes_record(&record, events, progress) {
                append_history(tx, id, events)?;
                return Ok(Some(None));
            }
            let before = Before::of(&record);
            if let Some(progress) = progress {
                record.route = Some(progress.clone());
            }
            record.note_routing(events);
            let outboxed = rewrite(tx, &before, &record, events)?;
            Ok(Some(Some(outboxed)))
        })?;
        Ok(self.pending(match done {
            None => false,
            Some(None) => true,
            Some(Some(outboxed)) => {
                self.count_record_writes(1);
                if outboxed {
                    self.inner.status_wake.ring(id);
                }
                true
            }
        }))
    }
}

/// The `WHERE` clause of a [`TimeSelection`] over parameters `$1` (from), `$2` (to), `$3`
/// (states, empty: all) and `$4` (configured services, empty: all).
const SELECTED: &str = "($1::bigint IS NULL OR desired_time_ms >= $1)
     AND ($2::bigint IS NULL OR desired_time_ms < $2)
     AND (cardinality($3::text[]) = 0 OR state = ANY($3))
     AND (cardinality($4::text[]) = 0 OR service_name = ANY($4))";

/// A [`TimeSelection`]'s parameters for [`SELECTED`].
struct Selected<'a> {
    /// `$1`: desired time at or after this, in milliseconds.
    from: Option<i64>,
    /// `$2`: desired time before this.
    to: Option<i64>,
    /// `$3`: the states' names.
    states: Vec<&'static str>,
    /// `$4`: the configured services.
    services: &'a [String],
}

impl<'a> Selected<'a> {
    /// `selection`'s parameters.
    fn of(selection: &TimeSelection<'a>) -> Self {
        Selected {
            from: selection.from.map(millis),
            to: selection.to.map(millis),
            states: selection.states.iter().map(|s| state_name(*s)).collect(),
            services: selection.services,
        }
    }
}

impl TimeIndex for PgStore {
    fn count_by_time(&self, selection: &TimeSelection<'_>) -> Result<StateCounts, StoreError> {
        let s = Selected::of(selection);
        self.read(|sql| {
            let rows = sql.query(
                &format!("SELECT state, count(*) FROM services WHERE {SELECTED} GROUP BY state"),
                &[&s.from, &s.to, &s.states, &s.services],
            )?;
            let mut counts = [0u64; time_counts::STATES];
            for row in &rows {
                let n: i64 = column(row, 1)?;
                counts[time_counts::slot(state_named(column(row, 0)?)?)] =
                    u64::try_from(n).unwrap_or(0);
            }
            Ok(StateCounts(counts))
        })
    }

    fn page_by_time(
        &self,
        selection: &TimeSelection<'_>,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let s = Selected::of(selection);
        self.read(|sql| {
            sql.query(
                &format!(
                    "SELECT id FROM services WHERE {SELECTED}
                     ORDER BY desired_time_ms, id OFFSET $5 LIMIT $6"
                ),
                &[
                    &s.from,
                    &s.to,
                    &s.states,
                    &s.services,
                    &big(offset),
                    &big(limit),
                ],
            )?
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect()
        })
    }

    fn count_per_slot(
        &self,
        from: Timestamp,
        to: Timestamp,
        service_name: &str,
        states: &[CallbackState],
    ) -> Vec<(Timestamp, u64)> {
        const SLOT: u64 = time_counts::SLOT_MS;
        // Both ends rounded out to whole slots, as the count index holds them.
        let first = from.as_millis() / SLOT * SLOT;
        let end = to.as_millis().div_ceil(SLOT).saturating_mul(SLOT);
        let states: Vec<&str> = states.iter().map(|s| state_name(*s)).collect();
        let counted = self.read(|sql| {
            sql.query(
                "SELECT desired_time_ms / $5 AS slot, count(*) FROM services
                 WHERE service_name = $1 AND (cardinality($2::text[]) = 0 OR state = ANY($2))
                     AND desired_time_ms >= $3 AND desired_time_ms < $4
                 GROUP BY slot ORDER BY slot",
                &[&service_name, &states, &big(first), &big(end), &big(SLOT)],
            )?
            .iter()
            .map(|row| {
                let slot: i64 = column(row, 0)?;
                let n: i64 = column(row, 1)?;
                let start = u64::try_from(slot).unwrap_or(0).saturating_mul(SLOT);
                Ok((Timestamp::from_millis(start), u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<Vec<_>, StoreError>>()
        });
        counted.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "counting services per slot failed");
            Vec::new()
        })
    }

    fn visit_by_time(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        visit: &mut dyn FnMut(&ServiceSummary<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (from, to) = (from.map(millis), to.map(millis));
        // Page by page from the last (time, id) shown, so that a visit that stops early has
        // read about what it was shown.
        let mut after: Option<(i64, String)> = None;
        loop {
            let (after_time, after_id) = match &after {
                Some((time, id)) => (Some(*time), Some(id.as_str())),
                None => (None, None),
            };
            let rows = self.read(|sql| {
                sql.query(
                    "SELECT id, desired_time_ms, state, service_name, customer_number
                     FROM services
                     WHERE ($1::bigint IS NULL OR desired_time_ms >= $1)
                         AND ($2::bigint IS NULL OR desired_time_ms < $2)
                         AND ($3::bigint IS NULL OR (desired_time_ms, id) > ($3, $4::text))
                     ORDER BY desired_time_ms, id LIMIT $5",
                    &[&from, &to, &after_time, &after_id, &big(PAGE_ROWS)],
                )
            })?;
            for row in &rows {
                let id: &str = column(row, 0)?;
                let summary = ServiceSummary {
                    id,
                    desired_time: timestamp(
                        column(row, 1)?,
                        &format!("desired time of service {id}"),
                    )?,
                    state: state_named(column(row, 2)?)?,
                    service_name: column(row, 3)?,
                    customer_number: column(row, 4)?,
                };
                if visit(&summary).is_break() {
                    return Ok(());
                }
            }
            match rows.last() {
                Some(last) if rows.len() == PAGE_ROWS => {
                    after = Some((column(last, 1)?, column::<String>(last, 0)?));
                }
                _ => return Ok(()),
            }
        }
    }
}

impl StatusOutbox for PgStore {
    fn status_written(&self) -> BoxFuture<'_, Pending<BTreeSet<String>>> {
        Box::pin(async move {
            let wake = &self.inner.status_wake;
            loop {
                // Registered before looking, so that a ring after the look wakes this wait.
                let notified = wake.bell.notified();
                let dirty = wake.take();
                if !dirty.is_empty() {
                    return self.pending(dirty);
                }
                notified.await;
            }
        })
    }

    fn status_pending_services(&self) -> Result<BTreeSet<String>, StoreError> {
        self.read(|sql| {
            sql.query(
                "SELECT DISTINCT service_id FROM status_outbox WHERE pending",
                &[],
            )?
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect()
        })
    }

    fn next_status_notification(
        &self,
        service_id: &str,
    ) -> Result<Option<StatusNotification>, StoreError> {
        self.read(|sql| {
            match sql.query_opt(
                "SELECT value FROM status_outbox WHERE service_id = $1 AND pending
                 ORDER BY seq LIMIT 1",
                &[&service_id],
            )? {
                Some(row) => decode_status(service_id, column(&row, 0)?).map(Some),
                None => Ok(None),
            }
        })
    }

    fn status_notifications(
        &self,
        service_id: &str,
    ) -> Result<Vec<StatusNotification>, StoreError> {
        self.read(|sql| {
            sql.query(
                "SELECT value FROM status_outbox WHERE service_id = $1 ORDER BY seq",
                &[&service_id],
            )?
            .iter()
            .map(|row| decode_status(service_id, column(row, 0)?))
            .collect()
        })
    }

    fn record_status_attempt(
        &self,
        service_id: &str,
        entry: &StatusNotification,
    ) -> Result<Pending<()>, StoreError> {
        let value = stored::status::encode(entry)?;
        let still_pending = entry.delivery == Delivery::Pending;
        // No row (the service expired meanwhile): nothing to do. A mark dropped once stays
        // dropped, as the sled engine's `status_pending` entry does.
        self.write(|tx| {
            tx.execute(
                "UPDATE status_outbox SET value = $3, pending = pending AND $4
                 WHERE service_id = $1 AND seq = $2",
                &[&service_id, &big(entry.seq), &value, &still_pending],
            )
            .map(drop)
        })
    }
}

#[cfg(test)]
mod tests;
