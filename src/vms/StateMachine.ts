import type { ExecutionKind, ExecutionState, RequestState, VmState } from "./Domain.js"

export const terminalVmStates: ReadonlyArray<VmState> = ["ready", "failed", "timed_out", "decommissioned"]

/** What an execution's state means for its VM; undefined when it does not change the VM. */
export const vmStateFor = (kind: ExecutionKind, state: ExecutionState): VmState | undefined => {
  switch (kind) {
    case "create":
      switch (state) {
        case "pending":
          return "pending"
        case "submitting":
          return "submitting"
        case "running":
          return "provisioning"
        case "succeeded":
          return "ready"
        case "failed":
          return "failed"
        case "timed_out":
          return "timed_out"
      }
      break
    case "decommission":
      switch (state) {
        case "pending":
        case "submitting":
        case "running":
          return "decommissioning"
        case "succeeded":
          return "decommissioned"
        case "failed":
        case "timed_out":
          // The VM was not (known to be) removed: it still serves, and the reason says why.
          return "ready"
      }
      break
    case "check":
      return undefined
  }
}

/** The states of a VM that is still being created. */
const creatingVmStates: ReadonlyArray<VmState> = ["pending", "submitting", "provisioning"]

/** The states of a VM that was created (became ready), whatever happened to it since. */
const createdVmStates: ReadonlyArray<VmState> = ["ready", "decommissioning", "decommissioned"]

/**
 * A request's overall state from its VMs' states: how their creation went. A VM decommissioned
 * since it became ready counts as created, so that removing a VM later does not make its request
 * look in progress again, or failed.
 */
export const requestState = (states: ReadonlyArray<VmState>): RequestState => {
  if (states.some((state) => creatingVmStates.includes(state))) return "in_progress"
  const ready = states.filter((state) => createdVmStates.includes(state)).length
  if (ready === states.length) return "ready"
  if (ready === 0) return "failed"
  return "partially_ready"
}

export const emptyCounts = (): Record<VmState, number> => ({
  pending: 0,
  submitting: 0,
  provisioning: 0,
  ready: 0,
  failed: 0,
  timed_out: 0,
  decommissioning: 0,
  decommissioned: 0
})
