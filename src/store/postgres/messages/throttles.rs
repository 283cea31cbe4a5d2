//! GMS throttle counts on PostgreSQL (the sled engine's `store/throttle.rs`).
//!
//! Interval windows are the sled engine's stored [`WindowV1`] values; daily counts are a plain
//! `bigint`, added to by the upsert itself, so that two nodes counting at once both count.
//! The day leads the counts' key, so the days before today are one index range: each count
//! removes up to [`PURGE_PER_WRITE`] of their rows, as sled does, and the table holds about
//! one day without a sweep of its own.

use super::from_bigint;
use crate::domain::throttle::Window;
use crate::store::codec;
use crate::store::engine::Throttles;
use crate::store::postgres::PgStore;
use crate::store::stored::throttle::WindowV1;
use crate::store::{Pending, StoreError};

/// Rows of past days removed per count (sled's number).
const PURGE_PER_WRITE: i64 = 32;

/// The windows of `$1`'s slots `$2`, in the order asked, `NULL` where none is stored.
const WINDOWS: &str = "
    SELECT stored.value
    FROM UNNEST($2::smallint[]) WITH ORDINALITY AS asked (slot, n)
    LEFT JOIN throttle_windows stored ON stored.service = $1 AND stored.slot = asked.slot
    ORDER BY asked.n";

/// Day `$1`'s counts of service `$2` for the (parameter, value) pairs `$3`, `$4`, in the
/// order asked, 0 where none is stored.
const COUNTS: &str = "
    SELECT COALESCE(stored.count, 0)
    FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS asked (parameter, value, n)
    LEFT JOIN throttle_counts stored
        ON stored.day = $1 AND stored.service = $2
        AND stored.parameter = asked.parameter AND stored.value = asked.value
    ORDER BY asked.n";

/// Writes service `$1`'s windows (arrays of slots and values), in slot order.
const UPSERT_WINDOWS: &str = "
    INSERT INTO throttle_windows (service, slot, value)
    SELECT $1::text, new.slot, new.value
    FROM UNNEST($2::smallint[], $3::bytea[]) AS new (slot, value)
    ORDER BY new.slot
    ON CONFLICT (service, slot) DO UPDATE SET value = EXCLUDED.value";

/// Adds to day `$1`'s counts of service `$2` once per (parameter, value) pair of `$3`, `$4`:
/// a pair given twice counts twice, as in sled. In key order, so that two nodes lock the rows
/// in one order.
const ADD_COUNTS: &str = "
    INSERT INTO throttle_counts (day, service, parameter, value, count)
    SELECT $1::bigint, $2::text, new.parameter, new.value, count(*)
    FROM UNNEST($3::text[], $4::text[]) AS new (parameter, value)
    GROUP BY new.parameter, new.value
    ORDER BY new.parameter, new.value
    ON CONFLICT (day, service, parameter, value)
        DO UPDATE SET count = throttle_counts.count + EXCLUDED.count";

/// Removes up to `$2` rows of days before `$1`; rows another node is removing are skipped,
/// not waited for.
const PURGE_PAST: &str = "
    DELETE FROM throttle_counts WHERE ctid = ANY (ARRAY (
        SELECT ctid FROM throttle_counts WHERE day < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED))";

impl Throttles for PgStore {
    fn throttle_windows(
        &self,
        service: &str,
        slots: &[u8],
    ) -> Result<Vec<Option<Window>>, StoreError> {
        let asked: Vec<i16> = slots.iter().map(|slot| i16::from(*slot)).collect();
        let rows = self.read(|sql| sql.query(WINDOWS, &[&service, &asked]))?;
        rows.iter()
            .zip(slots)
            .map(|(row, slot)| {
                let value: Option<&[u8]> = row.try_get(0)?;
                value
                    .map(|bytes| {
                        codec::read::<WindowV1>(
                            bytes,
                            &format!("throttle window of {service} {slot}"),
                        )
                        .map(Window::from)
                    })
                    .transpose()
            })
            .collect()
    }

    fn throttle_requests_on(
        &self,
        day: u32,
        service: &str,
        values: &[(&str, &str)],
    ) -> Result<Vec<u64>, StoreError> {
        let (parameters, values): (Vec<&str>, Vec<&str>) = values.iter().copied().unzip();
        let rows =
            self.read(|sql| sql.query(COUNTS, &[&i64::from(day), &service, &parameters, &values]))?;
        rows.iter()
            .map(|row| from_bigint(row.try_get(0)?, &format!("throttle count of {service}")))
            .collect()
    }

    fn count_throttled(
        &self,
        service: &str,
        windows: &[(u8, Window)],
        day: u32,
        values: &[(&str, &str)],
    ) -> Result<Pending<()>, StoreError> {
        let slots: Vec<i16> = windows.iter().map(|(slot, _)| i16::from(*slot)).collect();
        let encoded = windows
            .iter()
            .map(|(_, window)| codec::write(&WindowV1::from(window)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (parameters, values): (Vec<&str>, Vec<&str>) = values.iter().copied().unzip();
        let day = i64::from(day);
        self.transaction(|tx| {
            if !slots.is_empty() {
                tx.execute(UPSERT_WINDOWS, &[&service, &slots, &encoded])?;
            }
            if !parameters.is_empty() {
                tx.execute(ADD_COUNTS, &[&day, &service, &parameters, &values])?;
            }
            Ok(())
        })?;
        // Its own transaction after the count's, as in sled: the count stands if this fails.
        self.transaction(|tx| tx.execute(PURGE_PAST, &[&day, &PURGE_PER_WRITE]))?;
        Ok(self.pending(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{count, store, two_nodes};
    use super::*;
    use crate::domain::time::Timestamp;

    const CUSTOMER: &str = "_customer_number";

    #[test]
    fn counts_are_kept_per_service_parameter_value_and_day() {
        let store = store();
        let window = Window {
            start: Timestamp::from_millis(5_000),
            count: 3,
        };
        store
            .count_throttled("cb", &[(2, window)], 10, &[(CUSTOMER, "5115")])
            .unwrap()
            .without_waiting();
        store
            .count_throttled("cb", &[], 10, &[(CUSTOMER, "5115")])
            .unwrap()
            .without_waiting();

        assert_eq!(
            store.throttle_windows("cb", &[1, 2]).unwrap(),
            vec![None, Some(window)]
        );
        assert_eq!(
            store.throttle_windows("cb", &[2, 1, 2]).unwrap(),
            vec![Some(window), None, Some(window)],
            "in the order asked"
        );
        assert_eq!(store.throttle_windows("other", &[2]).unwrap(), vec![None]);
        assert!(store.throttle_windows("cb", &[]).unwrap().is_empty());
        let counts = store
            .throttle_requests_on(10, "cb", &[(CUSTOMER, "5115"), (CUSTOMER, "5125")])
            .unwrap();
        assert_eq!(counts, vec![2, 0]);
        assert_eq!(
            store
                .throttle_requests_on(10, "cb2", &[(CUSTOMER, "5115")])
                .unwrap(),
            vec![0],
            "another service counts apart"
        );
        assert!(store
            .throttle_requests_on(10, "cb", &[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_window_is_replaced_and_a_pair_given_twice_counts_twice() {
        let store = store();
        let window = |count| Window {
            start: Timestamp::from_millis(1_000),
            count,
        };
        store
            .count_throttled(
                "cb",
                &[(1, window(1)), (2, window(1))],
                10,
                &[(CUSTOMER, "1"), ("_phone", "1"), (CUSTOMER, "1")],
            )
            .unwrap()
            .without_waiting();
        store
            .count_throttled("cb", &[(1, window(2))], 10, &[(CUSTOMER, "1")])
            .unwrap()
            .without_waiting();

        assert_eq!(
            store.throttle_windows("cb", &[1, 2]).unwrap(),
            vec![Some(window(2)), Some(window(1))]
        );
        assert_eq!(
            store
                .throttle_requests_on(10, "cb", &[(CUSTOMER, "1"), ("_phone", "1")])
                .unwrap(),
            vec![3, 1],
            "parameters count apart"
        );
    }

    #[test]
    fn counting_a_day_removes_the_days_before_it() {
        let store = store();
        store
            .count_throttled("cb", &[], 9, &[(CUSTOMER, "1")])
            .unwrap()
            .without_waiting();
        store
            .count_throttled("other", &[], 10, &[(CUSTOMER, "2")])
            .unwrap()
            .without_waiting();

        assert_eq!(
            store
                .throttle_requests_on(9, "cb", &[(CUSTOMER, "1")])
                .unwrap(),
            vec![0],
            "day 9's count is gone, whichever service counted on day 10"
        );
        assert_eq!(
            store
                .throttle_requests_on(10, "other", &[(CUSTOMER, "2")])
                .unwrap(),
            vec![1]
        );
    }

    #[test]
    fn each_count_removes_at_most_a_few_past_rows() {
        let store = store();
        let old: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let pairs: Vec<(&str, &str)> = old.iter().map(|v| (CUSTOMER, v.as_str())).collect();
        store
            .count_throttled("cb", &[], 9, &pairs)
            .unwrap()
            .without_waiting();

        store
            .count_throttled("cb", &[], 10, &[(CUSTOMER, "new")])
            .unwrap()
            .without_waiting();
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM throttle_counts WHERE day < 10"
            ),
            40 - PURGE_PER_WRITE,
            "one count removes {PURGE_PER_WRITE} past rows"
        );
        store
            .count_throttled("cb", &[], 10, &[(CUSTOMER, "new")])
            .unwrap()
            .without_waiting();

        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM throttle_counts WHERE day < 10"
            ),
            0,
            "the next removes the rest"
        );
        assert_eq!(
            store
                .throttle_requests_on(10, "cb", &[(CUSTOMER, "new")])
                .unwrap(),
            vec![2]
        );
    }

    #[test]
    fn two_nodes_counting_at_once_both_count() {
        let (one, other) = two_nodes();
        let per_node = 25;

        std::thread::scope(|scope| {
            for store in [&one, &other] {
                scope.spawn(move || {
                    for _ in 0..per_node {
                        store
                            .count_throttled("cb", &[], 10, &[("_phone", "1"), (CUSTOMER, "1")])
                            .unwrap()
                            .without_waiting();
                    }
                });
            }
        });

        assert_eq!(
            one.throttle_requests_on(10, "cb", &[(CUSTOMER, "1"), ("_phone", "1")])
                .unwrap(),
            vec![2 * per_node, 2 * per_node]
        );
    }
}
