import { describe, expect, it } from "vitest"
import { requestState } from "../../src/vms/StateMachine.js"

describe("a VM request's state", () => {
  it("is how its VMs' creation went: in progress while one is being created, then ready, failed or partly ready", () => {
    expect(requestState(["pending", "ready"])).toBe("in_progress")
    expect(requestState(["provisioning", "failed"])).toBe("in_progress")
    expect(requestState(["ready", "ready"])).toBe("ready")
    expect(requestState(["failed", "timed_out"])).toBe("failed")
    expect(requestState(["ready", "timed_out"])).toBe("partially_ready")
  })

  it("does not change when a VM that became ready is decommissioned later", () => {
    expect(requestState(["ready", "decommissioning"])).toBe("ready")
    expect(requestState(["decommissioned", "decommissioned"])).toBe("ready")
    expect(requestState(["decommissioning", "failed"])).toBe("partially_ready")
    expect(requestState(["decommissioned", "failed"])).toBe("partially_ready")
  })
})
