-- VM requests, VMs, the proctor executions that create and decommission them, and the event log.

create table vm_requests (
  id uuid primary key,
  application text not null,
  environment text not null,
  stack text not null,
  os_version text not null,
  machine_type text not null,
  count integer not null check (count >= 1),
  metadata jsonb not null default '{}'::jsonb,
  requested_by text not null,
  created_at timestamptz not null default now()
);

-- One row per VM. The name is decided when the request is accepted and never changes,
-- so that a resubmitted or retried creation asks proctor for the same VM.
create table vms (
  id uuid primary key,
  request_id uuid references vm_requests (id),
  name text not null unique check (length(name) <= 63),
  application text not null,
  environment text not null,
  stack text not null,
  os_version text not null,
  machine_type text not null,
  metadata jsonb not null default '{}'::jsonb,
  state text not null,
  reason text,
  attempt integer not null default 1,
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  ready_at timestamptz,
  decommissioned_at timestamptz
);
create index vms_request_idx on vms (request_id);
create index vms_fleet_idx on vms (application, environment, stack, os_version);
create index vms_state_idx on vms (state);
create index vms_created_idx on vms (created_at, id);

-- One row per proctor execution fleet asks for. Written before the POST (state pending),
-- the proctor id stored after. due_at is when a controller should look at the row next;
-- claiming a row pushes due_at out by the lease, so a row whose controller died becomes due again.
create table executions (
  id uuid primary key,
  vm_id uuid not null references vms (id),
  kind text not null check (kind in ('create', 'decommission', 'check')),
  proc text not null,
  args jsonb not null,
  email_id text not null,
  state text not null check (state in ('pending', 'submitting', 'running', 'succeeded', 'failed', 'timed_out')),
  proctor_id text,
  proctor_status text,
  submissions integer not null default 0,
  polls integer not null default 0,
  due_at timestamptz default now(),
  claimed_by uuid,
  deadline_at timestamptz,
  reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  submitted_at timestamptz,
  finished_at timestamptz
);
create index executions_due_idx on executions (due_at) where due_at is not null;
create index executions_vm_idx on executions (vm_id);

-- What happened, when, why and on whose behalf: every state change and every accepted request.
create table events (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor text not null,
  kind text not null,
  application text,
  request_id uuid,
  vm_id uuid,
  execution_id uuid,
  run_id uuid,
  from_state text,
  to_state text,
  reason text not null
);
create index events_vm_idx on events (vm_id, id);
create index events_request_idx on events (request_id, id);
create index events_application_idx on events (application, id);
