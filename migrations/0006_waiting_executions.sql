-- An execution written ahead that waits for another VM to become ready: a replacement's swap.
-- The old VM's decommission is written with its replacement and starts in the statement that
-- records the replacement ready (unless it was cancelled first). Waiting executions are never due.
alter table executions drop constraint executions_state_check;
alter table executions add constraint executions_state_check
  check (state in ('waiting', 'pending', 'submitting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'));
alter table executions add column after_vm_id uuid references vms (id);
-- The run an execution was written for, for the event of its start.
alter table executions add column run_id uuid;
create index executions_waiting_idx on executions (after_vm_id) where state = 'waiting';
