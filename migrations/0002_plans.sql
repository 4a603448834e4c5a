-- Deprecation policies and saved plans (the planner, issue 3).

-- One row per OS version fleet has a policy for. Seeded from plans/deprecations.yaml at start:
-- the file adds the versions that have no row yet, and never overwrites a row, so edits made
-- over HTTP (PUT /v1/deprecations/{os}) survive restarts. Dates are UTC days.
create table deprecation_policies (
  os_version text primary key,
  deprecated_from date not null,
  end_of_life date not null,
  replacement text,
  note text,
  link text,
  updated_by text not null,
  updated_at timestamptz not null default now(),
  check (end_of_life >= deprecated_from),
  check (replacement is null or replacement <> os_version)
);

-- A saved plan: the recycle plan as submitted and as decoded, the plan computed from it, and what
-- it was computed from. The executor re-verifies a plan before it runs it: it recomputes the plan
-- for `spec` against the current inventory and policies (as of `as_of`) and refuses to run when the
-- inventory digest differs from `inventory_digest`. `fleet_vms` keeps the rows the digest covers,
-- [id, name, state, osVersion] each, so a refusal can say how many VMs differ.
create table plans (
  id uuid primary key,
  name text not null,
  source text,
  spec jsonb not null,
  spec_text text not null,
  spec_hash text not null,
  plan jsonb not null,
  plan_hash text not null,
  inventory_digest text not null,
  fleet_vms jsonb not null,
  as_of timestamptz not null,
  fleets_moving integer not null,
  vms_moving integer not null,
  fleets_skipped integer not null,
  steps integer not null,
  waves integer not null,
  estimated_seconds integer not null,
  created_by text not null,
  created_at timestamptz not null default now()
);
create index plans_created_idx on plans (created_at desc, id desc);
create index plans_plan_hash_idx on plans (plan_hash);
