-- Runs of saved plans, their steps (one per old VM), and the fleets they hold.

create table runs (
  id uuid primary key,
  plan_id uuid not null references plans (id),
  name text not null,
  state text not null check (state in ('running', 'paused', 'cancelling', 'aborting', 'succeeded', 'failed', 'cancelled', 'aborted')),
  -- Why a run is paused: operator | approval | failure-budget | window.
  pause_reason text,
  reason text,
  trigger text not null check (trigger in ('manual', 'schedule', 'on-demand')),
  -- The plan this run executes (for a scheduled run, recomputed when it fired) and its report.
  plan jsonb not null,
  report text not null,
  current_wave integer not null default 0,
  waves integer not null,
  -- What each wave waits for before it starts: none | previous-complete | approval.
  gates jsonb not null,
  max_in_flight integer not null,
  max_fleets_in_parallel integer not null,
  bake_seconds integer not null,
  allowed_failures integer not null,
  failure_action text not null check (failure_action in ('pause', 'abort')),
  failures integer not null default 0,
  rollback_on_abort boolean not null default false,
  -- A scheduled run: the fire time it belongs to (one run per plan and fire), and its window's end.
  fire_at timestamptz,
  window_ends_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  unique (plan_id, fire_at)
);
create index runs_active_idx on runs (state) where state in ('running', 'paused', 'cancelling', 'aborting');

-- pending → creating → (checking) → baking → decommissioning → done; or failed; or cancelled
-- (never started); or rolling_back → rolled_back (its replacement removed, the old VM kept).
create table steps (
  id uuid primary key,
  run_id uuid not null references runs (id),
  index integer not null,
  wave integer not null,
  fleet text not null,
  application text not null,
  environment text not null,
  stack text not null,
  fleet_concurrency integer not null check (fleet_concurrency >= 1),
  old_vm_id uuid not null references vms (id),
  old_vm_name text not null,
  from_os text not null,
  target_os text not null,
  machine_type text not null,
  new_vm_id uuid references vms (id),
  new_vm_name text,
  state text not null check (state in ('pending', 'creating', 'checking', 'baking', 'decommissioning', 'done', 'failed', 'cancelled', 'rolling_back', 'rolled_back')),
  reason text,
  bake_until timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  unique (run_id, index)
);
create index steps_run_state_idx on steps (run_id, state, index);

-- A fleet is in at most one active run: the row exists from the run's start to its end.
create table run_fleets (
  fleet text primary key,
  run_id uuid not null references runs (id)
);
create index run_fleets_run_idx on run_fleets (run_id);
