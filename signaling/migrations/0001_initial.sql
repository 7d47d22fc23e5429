-- supernode signaling schema, version 1. Portable SQL: runs unchanged on SQLite and
-- PostgreSQL (text ids, BIGINT Unix seconds, BIGINT 0/1 flags).
CREATE TABLE IF NOT EXISTS partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    relay       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE TABLE IF NOT EXISTS accounts (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners(id),
    display_name  TEXT,
    external_id   TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (partner_id, external_id)
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid         TEXT PRIMARY KEY,
    secret_hex  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
