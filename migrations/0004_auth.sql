-- API tokens, idempotency keys, and indexes for reading the audit log (GET /v1/events).

-- A token is shown once, when it is created; only its SHA-256 is kept. `applications` holds
-- globs over application names; null means every application.
create table api_tokens (
  id uuid primary key,
  name text not null,
  owner_email text not null,
  scopes text[] not null,
  applications text[],
  token_hash text not null unique,
  created_by text not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  last_used_at timestamptz
);
-- Names identify tokens for `fleet tokens revoke`: unique among the active ones.
create unique index api_tokens_active_name_idx on api_tokens (name) where revoked_at is null;

-- One row per (token, Idempotency-Key) of a POST. Inserting it is the claim: a concurrent
-- duplicate finds the row and does not run. `status` is null while the first request runs;
-- then the response is kept until `expires_at`. Only 2xx answers are kept (a failed request
-- releases its key).
create table idempotency_keys (
  token_id uuid not null references api_tokens (id),
  key text not null,
  request_hash text not null,
  method text not null,
  path text not null,
  status integer,
  content_type text,
  body text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (token_id, key)
);
create index idempotency_keys_expiry_idx on idempotency_keys (expires_at);

create index if not exists events_run_idx on events (run_id, id);
create index if not exists events_actor_idx on events (actor, id);
create index if not exists events_kind_idx on events (kind, id);
create index if not exists events_at_idx on events (at);
