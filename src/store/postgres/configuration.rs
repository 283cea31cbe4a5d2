//! Configured services, agents, console accounts, Storage API areas and subscriptions on
//! PostgreSQL.
