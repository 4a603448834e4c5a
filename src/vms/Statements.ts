/**
 * Statements kept as plain text (no template, no interpolation) because something other than
 * VmRepo runs them too: `npm run bench:http`'s comparison servers, which must ask the database for
 * exactly what fleet asks.
 */

/**
 * A VM with its events and its executions, in one round trip; $1 the VM's id. (Every event of the
 * VM, whatever its kind: a filter on the kind here let the planner read a VM through the index of
 * kinds, three times slower once the table grew. VmRequests keeps the VM's own states.)
 */
export const vmDetailStatement = `
  select v.*,
    coalesce((
      select json_agg(json_build_object(
        'vmId', e.vm_id, 'kind', e.kind, 'at', e.at, 'fromState', e.from_state, 'toState', e.to_state, 'reason', e.reason, 'actor', e.actor
      ) order by e.id) from events e where e.vm_id = v.id
    ), '[]') as history,
    coalesce((
      select json_agg(json_build_object(
        'id', x.id, 'vmId', x.vm_id, 'kind', x.kind, 'proc', x.proc, 'args', x.args, 'emailId', x.email_id, 'state', x.state,
        'proctorId', x.proctor_id, 'proctorStatus', x.proctor_status, 'submissions', x.submissions, 'polls', x.polls,
        'dueAt', x.due_at, 'deadlineAt', x.deadline_at, 'reason', x.reason, 'createdAt', x.created_at,
        'submittedAt', x.submitted_at, 'finishedAt', x.finished_at
      ) order by x.created_at, x.id) from executions x where x.vm_id = v.id
    ), '[]') as executions
  from vms v where v.id = $1`
