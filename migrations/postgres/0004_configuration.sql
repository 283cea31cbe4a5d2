-- Configured services, agents, console accounts, Storage API areas and Notification API
-- subscriptions. Values are the store's versioned stored types (a format byte, then
-- bincode), as in the sled engine; times are milliseconds since the Unix epoch.
--
-- Keys are `COLLATE "C"`: the lists (`ORDER BY` the key) then come in byte order, as the
-- sled engine's trees iterate, whatever the database's default collation, and the primary
-- key's index still serves that order.
CREATE TABLE templates (
    name text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE agents (
    id text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE accounts (
    username text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- `expire_at_ms` is the value's own expiry, written with it: the expiry job's index.
CREATE TABLE storage_areas (
    id text COLLATE "C" PRIMARY KEY,
    expire_at_ms bigint NOT NULL,
    value bytea NOT NULL
);
CREATE INDEX storage_areas_by_expiry ON storage_areas (expire_at_ms, id);

-- A service's own storage, removed with its service.
CREATE TABLE service_storage (
    service_id text PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    value bytea NOT NULL
);

CREATE TABLE subscriptions (
    id text COLLATE "C" PRIMARY KEY,
    expire_at_ms bigint NOT NULL,
    value bytea NOT NULL
);
CREATE INDEX subscriptions_by_expiry ON subscriptions (expire_at_ms, id);
