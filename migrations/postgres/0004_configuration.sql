-- Configured services, agents, console accounts, Storage API areas and Notification API
-- subscriptions.
CREATE TABLE templates (
    name text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE agents (
    id text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE accounts (
    username text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE storage_areas (
    id text PRIMARY KEY,
    expire_at_ms bigint NOT NULL,
    value bytea NOT NULL
);
CREATE INDEX storage_areas_by_expiry ON storage_areas (expire_at_ms);

-- A service's own storage, removed with its service.
CREATE TABLE service_storage (
    service_id text PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    value bytea NOT NULL
);

CREATE TABLE subscriptions (
    id text PRIMARY KEY,
    expire_at_ms bigint NOT NULL,
    value bytea NOT NULL
);
CREATE INDEX subscriptions_by_expiry ON subscriptions (expire_at_ms);
