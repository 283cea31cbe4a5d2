-- Services, their routing history, the agents who handled them and their status outbox.
-- Values are the store's versioned stored types (a format byte, then bincode), as in the sled
-- engine; the columns beside them are what the engine finds rows by. Times are milliseconds
-- since the Unix epoch. Text the engine orders by is COLLATE "C" (byte order), so that rows
-- come back in the order of the sled engine's keys.
CREATE TABLE services (
    id text COLLATE "C" PRIMARY KEY,
    service_name text COLLATE "C" NOT NULL,
    -- CallbackState's wire name (SCHEDULED, QUEUED, ROUTING, PROCESSING, COMPLETED).
    state text NOT NULL,
    customer_number text COLLATE "C",
    owner text COLLATE "C",
    desired_time_ms bigint NOT NULL,
    expire_at_ms bigint NOT NULL,
    value bytea NOT NULL
);
CREATE INDEX services_by_customer ON services (customer_number, id)
    WHERE customer_number IS NOT NULL;
CREATE INDEX services_by_state ON services (service_name, state, id);
CREATE INDEX services_by_owner ON services (owner, service_name, id) WHERE owner IS NOT NULL;
CREATE INDEX services_by_time ON services (desired_time_ms, id);
CREATE INDEX services_scheduled ON services (desired_time_ms, id) WHERE state = 'SCHEDULED';
CREATE INDEX services_by_expiry ON services (expire_at_ms, id);

-- One row per agent who handled a service, with the service's state (the desktop's lists).
CREATE TABLE service_agents (
    agent text COLLATE "C" NOT NULL,
    service_id text COLLATE "C" NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    state text NOT NULL,
    PRIMARY KEY (agent, service_id)
);
CREATE INDEX service_agents_by_service ON service_agents (service_id);

-- Sequence numbers are drawn from one sequence per table: increasing, so a service's rows
-- read back in the order they were appended (gaps are harmless: only order matters).
CREATE SEQUENCE routing_history_seq;
CREATE TABLE routing_history (
    service_id text COLLATE "C" NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);

-- The value carries its seq too (StatusNotification::seq), drawn before it is encoded.
CREATE SEQUENCE status_outbox_seq;
CREATE TABLE status_outbox (
    service_id text COLLATE "C" NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    -- Not yet delivered or given up: the status worker's work.
    pending boolean NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);
CREATE INDEX status_outbox_pending ON status_outbox (service_id, seq) WHERE pending;
