-- Notifications (customer- and agent-bound), chat sessions with their transcripts, and GMS
-- throttle counts. Values are the store's versioned stored types, as in the sled engine; the
-- columns beside them are what the engine finds and changes rows by.

-- Every notification's `seq`, both ways, as sled's `generate_id` gives it: increasing across
-- the database (so across services and nodes), from 0, gaps allowed.
CREATE SEQUENCE notification_seq MINVALUE 0 START 0;

CREATE TABLE notifications (
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    -- The gms_user whose CometD clients get it (a comet service with an owner).
    comet_user text,
    -- The truth about delivery: marked by one UPDATE, so the flag inside `value` keeps what
    -- was written (false) and is not read.
    delivered boolean NOT NULL DEFAULT false,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);
-- A user's undelivered comet notifications, oldest first (the `undelivered` index of sled).
CREATE INDEX notifications_undelivered ON notifications (comet_user, seq)
    WHERE comet_user IS NOT NULL AND NOT delivered;

CREATE TABLE agent_notifications (
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    -- Whether take_agent_notifications returned it; as `delivered` above.
    retrieved boolean NOT NULL DEFAULT false,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);

-- "C": sessions are listed in the byte order of their ids, as sled's keys order them.
CREATE TABLE chat_sessions (
    id text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE transcripts (
    session_id text COLLATE "C" NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    position bigint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (session_id, position)
);

-- An interval throttle's window (slot: throttle number, 1 or 2).
CREATE TABLE throttle_windows (
    service text NOT NULL,
    slot smallint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (service, slot)
);

-- Creates counted per UTC day (days since the epoch), service, parameter and value. The day
-- comes first, so the days before today are one range at the front of the key.
CREATE TABLE throttle_counts (
    day bigint NOT NULL,
    service text NOT NULL,
    parameter text NOT NULL,
    value text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (day, service, parameter, value)
);
