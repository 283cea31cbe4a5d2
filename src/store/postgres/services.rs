//! Services, their routing history, the time index and the status outbox on PostgreSQL.
