/**
 * VM requests on OS versions the deprecation policies (test/support/deprecations.yaml) retire:
 * past the end of life refused, deprecated accepted with a warning, and a policy changed through
 * this controller applied to its very next request although the policies are remembered.
 *
 * The clock is real: ubuntu-16.04 is past its end of life (2026-04-30); ubuntu-20.04 is deprecated
 * until its own (2099-05-31), and ubuntu-22.04 and 24.04 are supported until 2098.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { waitForRequest } from "../../src/client/Client.js"
import { CreateVmRequest } from "../../src/vms/Domain.js"
import { request, tableCounts, vmRequestFields, withSql } from "../api/support.js"
import { runCli } from "../support/Cli.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"

interface Answer {
  readonly status: number
  readonly body: Record<string, unknown>
}

const send = (fleet: TestFleet, method: "POST" | "PUT", path: string, payload: unknown) =>
  Effect.map(request(fleet, method, path, { body: JSON.stringify(payload) }), (answer): Answer => ({ status: answer.status, body: answer.json as Record<string, unknown> }))

const createVms = (fleet: TestFleet, overrides: Record<string, unknown> = {}) => send(fleet, "POST", "/v1/vm-requests", vmRequestFields(overrides))

const issuesOf = (answer: Answer) => (answer.body["issues"] as Array<{ path: Array<string>; message: string }>).map((issue) => [issue.path.join("."), issue.message])

const endOfLife1604 = "ubuntu-16.04 is past its end of life (2026-04-30); expected a supported version: ubuntu-22.04, ubuntu-24.04"
const deprecated2004 = "ubuntu-20.04 is deprecated since 2025-05-31 (end of life 2099-05-31, when new VMs on it are refused): " +
  "a recycle plan of deprecated versions will move these VMs to ubuntu-24.04; ask for ubuntu-24.04 to skip the move"

describe("VM requests on deprecated OS versions", () => {
  it.scopedLive("refuses an OS version past its end of life, in the same answer as the request's other problems, and writes nothing", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      // The test token's creation is an event already.
      const before = yield* tableCounts(fleet)
      expect(before).toMatchObject({ vm_requests: 0, vms: 0, executions: 0 })
      const alone = yield* createVms(fleet, { osVersion: "ubuntu-16.04" })
      expect(alone.status).toBe(400)
      expect(alone.body["_tag"]).toBe("InvalidInput")
      expect(alone.body["message"]).toBe(`osVersion: ${endOfLife1604}`)
      expect(issuesOf(alone)).toEqual([["osVersion", endOfLife1604]])

      const withOthers = yield* createVms(fleet, { osVersion: "ubuntu-16.04", environment: "prod", count: 0 })
      expect(withOthers.status).toBe(400)
      expect(issuesOf(withOthers)).toEqual([
        ["environment", "unknown environment \"prod\"; expected one of integration, staging, production"],
        ["osVersion", endOfLife1604],
        ["count", "expected an integer of at least 1"]
      ])

      // The typed client gets the same refusal.
      const refused = yield* Effect.flip(fleet.client.vms.createRequest({ payload: new CreateVmRequest(vmRequestFields({ osVersion: "ubuntu-16.04" })) }))
      expect(refused._tag).toBe("InvalidInput")

      expect(yield* tableCounts(fleet)).toEqual(before)
      expect((yield* fleet.simulator.stats).calls).toBe(0)
    }))

  it.scopedLive("accepts a deprecated OS version with a warning in the answer and the log; a supported one's answer has no warnings", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const deprecated = yield* createVms(fleet, { osVersion: "ubuntu-20.04", count: 2 })
      expect(deprecated.status).toBe(202)
      expect(deprecated.body["warnings"]).toEqual([deprecated2004])
      expect(deprecated.body["vms"]).toHaveLength(2)
      const logged = fleet.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line["level"] === 40 && line["requestId"] === deprecated.body["id"])
      expect(logged.map((line) => [line["msg"], line["osVersion"], line["requestedBy"]])).toEqual([
        [`Accepted VM request on a deprecated OS version: ${deprecated2004}`, "ubuntu-20.04", "admin@example.com"]
      ])

      const supported = yield* createVms(fleet)
      expect(supported.status).toBe(202)
      expect(Object.keys(supported.body).sort()).toEqual(["id", "uri", "vms"])

      // The typed client decodes them.
      const accepted = yield* fleet.client.vms.createRequest({ payload: new CreateVmRequest(vmRequestFields({ osVersion: "ubuntu-20.04" })) })
      expect(accepted.warnings).toEqual([deprecated2004])
      expect((yield* tableCounts(fleet))["vms"]).toBe(4)
    }))

  it.scopedLive("remembers the policies (a change made elsewhere is not read per request) but applies one PUT here to the next request", () =>
    Effect.gen(function* () {
      // A TTL no test outlives: what changes below is due to the PUT's invalidation, never to the copy expiring.
      const fleet = yield* startFleet({ reconcile: false, settings: { FLEET_DEPRECATIONS_CACHE_TTL: "1 hour" } })
      const before = yield* createVms(fleet, { osVersion: "ubuntu-22.04" })
      expect(before.status).toBe(202)
      expect(before.body["warnings"]).toBeUndefined()

      // As another controller's PUT would: in the table, past this controller's copy.
      yield* withSql(fleet, (sql) => sql`update deprecation_policies set deprecated_from = '2020-01-01', end_of_life = '2021-01-01' where os_version = 'ubuntu-22.04'`)
      const unseen = yield* createVms(fleet, { osVersion: "ubuntu-22.04" })
      expect(unseen.status).toBe(202)
      expect(unseen.body["warnings"]).toBeUndefined()

      // Through this controller: deprecated with no replacement, then past its end of life.
      const deprecate = yield* send(fleet, "PUT", "/v1/deprecations/ubuntu-22.04", { deprecatedFrom: "2025-01-31", endOfLife: "2035-01-31" })
      expect(deprecate.status).toBe(200)
      const warned = yield* createVms(fleet, { osVersion: "ubuntu-22.04" })
      expect(warned.status).toBe(202)
      expect(warned.body["warnings"]).toEqual([
        "ubuntu-22.04 is deprecated since 2025-01-31 (end of life 2035-01-31, when new VMs on it are refused): " +
          "no supported version replaces it in the deprecation policies; supported versions: ubuntu-24.04"
      ])

      const retire = yield* send(fleet, "PUT", "/v1/deprecations/ubuntu-22.04", { deprecatedFrom: "2025-01-31", endOfLife: "2026-01-31", replacement: "ubuntu-24.04" })
      expect(retire.status).toBe(200)
      const refused = yield* createVms(fleet, { osVersion: "ubuntu-22.04" })
      expect(refused.status).toBe(400)
      expect(issuesOf(refused)).toEqual([["osVersion", "ubuntu-22.04 is past its end of life (2026-01-31); expected a supported version: ubuntu-24.04"]])
      expect((yield* tableCounts(fleet))["vms"]).toBe(3)
    }))

  it.scopedLive("does not create a failed VM again on a version past its end of life", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { executionFailureRate: 1 } })
      const accepted = yield* fleet.client.vms.createRequest({ payload: new CreateVmRequest(vmRequestFields({ osVersion: "ubuntu-22.04" })) })
      const failed = yield* waitForRequest(fleet.client, accepted.id, { timeout: "30 seconds", initialDelay: "20 millis", maxDelay: "100 millis" })
      expect(failed.state).toBe("failed")
      const vm = failed.vms[0]!
      const retire = yield* send(fleet, "PUT", "/v1/deprecations/ubuntu-22.04", { deprecatedFrom: "2025-01-31", endOfLife: "2026-01-31", replacement: "ubuntu-24.04" })
      expect(retire.status).toBe(200)
      const submitted = (yield* fleet.simulator.ledger).executions.length
      const retried = yield* Effect.flip(fleet.client.vms.retryVm({ path: { id: vm.id } }))
      expect(retried._tag).toBe("Conflict")
      expect(retried.message).toBe(
        `VM ${vm.name} is on ubuntu-22.04, past its end of life (2026-01-31): it is not created again; request a new VM on a supported version: ubuntu-24.04`
      )
      expect((yield* fleet.client.vms.getVm({ path: { id: vm.id } })).state).toBe("failed")
      expect((yield* fleet.simulator.ledger).executions).toHaveLength(submitted)
      // A VM that could not be retried anyway is told why that is, not about its version.
      yield* withSql(fleet, (sql) => sql`update vms set state = 'ready' where id = ${vm.id}`)
      const ready = yield* Effect.flip(fleet.client.vms.retryVm({ path: { id: vm.id } }))
      expect(ready.message).toBe(`VM ${vm.name} is ready; expected failed or timed_out`)
    }))

  it.scopedLive("fleet vms create prints the warning on stderr, and stdout stays the table", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const ran = yield* runCli(
        ["vms", "create", "-a", "payments-api", "-e", "production", "-s", "java", "--os", "ubuntu-20.04", "-m", "n2-standard-4"],
        { FLEET_URL: fleet.baseUrl, FLEET_TOKEN: fleet.token }
      )
      expect(ran.code).toBe(0)
      expect(ran.stderr).toBe(`warning: ${deprecated2004}\n`)
      expect(ran.stdout).toMatch(/^accepted: \/v1\/vm-requests\/[0-9a-f-]{36}\nID +NAME\n/)
      expect(ran.stdout).not.toContain("warning")
    }), 60_000)
})
