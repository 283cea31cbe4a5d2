-- Notifications (customer- and agent-bound), chat sessions with their transcripts, and GMS
-- throttle counts.
CREATE TABLE notifications (
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    -- The gms_user whose CometD clients get it (a comet service with an owner).
    comet_user text,
    delivered boolean NOT NULL DEFAULT false,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);
CREATE INDEX notifications_undelivered ON notifications (comet_user, seq)
    WHERE comet_user IS NOT NULL AND NOT delivered;

CREATE TABLE agent_notifications (
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    retrieved boolean NOT NULL DEFAULT false,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);

CREATE TABLE chat_sessions (
    id text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE transcripts (
    session_id text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    position bigint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (session_id, position)
);

CREATE TABLE throttle_windows (
    service text NOT NULL,
    slot smallint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (service, slot)
);

CREATE TABLE throttle_counts (
    day integer NOT NULL,
    service text NOT NULL,
    parameter text NOT NULL,
    value text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (day, service, parameter, value)
);
