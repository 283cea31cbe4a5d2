-- callbackd's PostgreSQL schema, first migration: marks kept beside the data (whether the
-- configured services and the agents were ever seeded from their files).
CREATE TABLE callbackd_meta (
    name text PRIMARY KEY,
    value text NOT NULL
);
