-- A queued step: its replacement is written ahead, with a creation that waits for a step under
-- way (`after_step_id`, the step ahead of it; none when held) to finish. The creation starts in
-- the statement that records that step's decommission succeeded, so the slot it frees is taken at once.
alter table steps drop constraint steps_state_check;
alter table steps add constraint steps_state_check
  check (state in ('pending', 'queued', 'creating', 'checking', 'baking', 'decommissioning', 'done', 'failed', 'cancelled',
                   'rolling_back', 'rolled_back'));
alter table steps add column after_step_id uuid references steps (id);
-- What a waiting execution waits for, by its kind: a decommission (a swap) for `after_vm_id` to be
-- created ready; a creation (a queued step's) for `after_execution_id` to succeed. A waiting
-- creation without `after_execution_id` is held: only the executor starts it. (Not the VM: another
-- decommission of the old VM ahead, an operator's, must not start it.)
alter table executions add column after_execution_id uuid references executions (id);
create index executions_waiting_after_execution_idx on executions (after_execution_id) where state = 'waiting';
