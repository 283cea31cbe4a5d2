-- Services, their routing history, the agents who handled them and their status outbox.
-- Values are the store's versioned stored types (a format byte, then bincode), as in the sled
-- engine; the columns beside them are what the engine finds rows by. Times are milliseconds
-- since the Unix epoch.
CREATE TABLE services (
    id text PRIMARY KEY,
    service_name text NOT NULL,
    state text NOT NULL,
    customer_number text,
    owner text,
    desired_time_ms bigint NOT NULL,
    expire_at_ms bigint,
    value bytea NOT NULL
);
CREATE INDEX services_by_customer ON services (customer_number, id);
CREATE INDEX services_by_state ON services (service_name, state, id);
CREATE INDEX services_by_owner ON services (owner, service_name, id) WHERE owner IS NOT NULL;
CREATE INDEX services_by_time ON services (desired_time_ms, id);
CREATE INDEX services_scheduled ON services (desired_time_ms, id) WHERE state = 'SCHEDULED';
CREATE INDEX services_by_expiry ON services (expire_at_ms) WHERE expire_at_ms IS NOT NULL;

-- One row per agent who handled a service, with the service's state (the desktop's lists).
CREATE TABLE service_agents (
    agent text NOT NULL,
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    state text NOT NULL,
    PRIMARY KEY (agent, service_id)
);
CREATE INDEX service_agents_by_service ON service_agents (service_id);

CREATE TABLE routing_history (
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);

CREATE TABLE status_outbox (
    service_id text NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    pending boolean NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (service_id, seq)
);
CREATE INDEX status_outbox_pending ON status_outbox (service_id) WHERE pending;
