import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { waitForRequest } from "../../src/client/Client.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { CreateVmRequest, VmId } from "../../src/vms/Domain.js"
import { isDnsLabel } from "../../src/vms/Naming.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"

const request = (overrides: Partial<ConstructorParameters<typeof CreateVmRequest>[0]> = {}) =>
  new CreateVmRequest({
    application: "payments-api",
    environment: "production",
    stack: "java",
    osVersion: "ubuntu-24.04",
    machineType: "n2-standard-4",
    count: 3,
    metadata: { team: "payments" },
    ...overrides
  })

const settle = (fleet: TestFleet, body: CreateVmRequest) =>
  Effect.gen(function* () {
    const accepted = yield* fleet.client.vms.createRequest({ payload: body })
    return yield* waitForRequest(fleet.client, accepted.id, { timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis" })
  })

const rowCounts = (databaseUrl: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ requests: number; vms: number; executions: number }>`
      select (select count(*) from vm_requests)::int as requests, (select count(*) from vms)::int as vms,
             (select count(*) from executions)::int as executions`
    return row!
  }).pipe(Effect.provide(layerFromUrl(Redacted.make(databaseUrl), 1)), Effect.scoped, Effect.orDie)

const post = (fleet: TestFleet, path: string, body: string, contentType = "application/json") =>
  Effect.promise(async () => {
    const response = await fetch(`${fleet.baseUrl}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": contentType, authorization: `Bearer ${fleet.token}` }
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const get = (fleet: TestFleet, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${fleet.baseUrl}${path}`, { headers: { authorization: `Bearer ${fleet.token}` } })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

describe("VM requests over HTTP", () => {
  it.scopedLive("creates 3 VMs that all become ready, with readable unique names and their history", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      const settled = yield* settle(fleet, request())
      expect(settled.state).toBe("ready")
      expect(settled.counts.ready).toBe(3)
      const names = settled.vms.map((vm) => vm.name)
      expect(new Set(names).size).toBe(3)
      for (const name of names) {
        expect(isDnsLabel(name)).toBe(true)
        expect(name).toMatch(/^payments-api-prd-java-u2404-[0-9a-z]{6}$/)
      }
      expect(settled.vms[0]!.history.map((event) => event.to)).toEqual(["pending", "submitting", "provisioning", "ready"])
      const ledger = yield* fleet.simulator.ledger
      expect(ledger.vms.map((vm) => vm.name).sort()).toEqual([...names].sort())
      const detail = yield* fleet.client.vms.getVm({ path: { id: settled.vms[0]!.id } })
      expect(detail.executions).toHaveLength(1)
      expect(detail.executions[0]!.proctorId).toMatch(/^\d{19,20}$/)
      expect(BigInt(detail.executions[0]!.proctorId!)).toBeGreaterThan(2n ** 53n)
      expect(detail.metadata).toEqual({ team: "payments" })
    }))

  it.scopedLive("rides out transient 5xx from proctor", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { failureRate: 0.5, seed: 7 } })
      const settled = yield* settle(fleet, request({ count: 6 }))
      expect(settled.state).toBe("ready")
      const stats = yield* fleet.simulator.stats
      expect(stats.submit.failed).toBeGreaterThan(0)
      expect(stats.submit.accepted).toBe(6)
      expect((yield* fleet.simulator.ledger).vms).toHaveLength(6)
    }))

  it.scopedLive("resubmits with the same name when proctor's answer is lost, and never invents a second VM", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { lostResponseRate: 0.5, seed: 3 }, settings: { PROCTOR_TIMEOUT: "300 millis" } })
      const settled = yield* settle(fleet, request({ count: 6 }))
      expect(settled.state).toBe("ready")
      const ledger = yield* fleet.simulator.ledger
      expect(ledger.vms.map((vm) => vm.name).sort()).toEqual(settled.vms.map((vm) => vm.name).sort())
      expect(ledger.executions.some((execution) => execution.responseLost)).toBe(true)
      expect(ledger.vms.some((vm) => vm.createSubmissions > 1)).toBe(true)
    }))

  it.scopedLive("fails a VM at once, with the reason, when proctor does not know the proc", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ withoutProcs: ["create-vm-go"] })
      const settled = yield* settle(fleet, request({ application: "search-indexer", stack: "go", count: 2 }))
      expect(settled.state).toBe("failed")
      for (const vm of settled.vms) {
        expect(vm.state).toBe("failed")
        expect(vm.reason).toMatch(/proctor rejected the execution: .*metadata not found for proc create-vm-go/)
      }
      const stats = yield* fleet.simulator.stats
      expect(stats.submit.unknownProc).toBe(2)
      expect(stats.calls).toBe(2)
    }))

  it.scopedLive("marks an execution stuck in CREATED as timed_out after the deadline", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { stuckRate: 1 }, settings: { FLEET_EXECUTION_DEADLINE: "300 millis" } })
      const settled = yield* settle(fleet, request({ count: 1 }))
      expect(settled.state).toBe("failed")
      const vm = settled.vms[0]!
      expect(vm.state).toBe("timed_out")
      expect(vm.reason).toMatch(/no final state from proctor .* within 300ms \(last status CREATED\)/)
      // Retrying keeps the name.
      yield* fleet.simulator.configure({ stuckRate: 0 })
      const retried = yield* fleet.client.vms.retryVm({ path: { id: vm.id } })
      expect(retried.name).toBe(vm.name)
      const again = yield* waitForRequest(fleet.client, settled.id, { timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis" })
      expect(again.vms[0]!.state).toBe("ready")
      expect(again.vms[0]!.name).toBe(vm.name)
      expect(again.vms[0]!.attempt).toBe(2)
    }))
})

describe("bad input", () => {
  it.scopedLive("names every offending field, and writes nothing", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const typeErrors = yield* post(fleet, "/v1/vm-requests", JSON.stringify({ application: 3, count: "none", extra: true }))
      expect(typeErrors.status).toBe(400)
      const paths = (typeErrors.body["issues"] as Array<{ path: Array<string> }>).map((issue) => issue.path.join("."))
      expect(paths).toEqual(expect.arrayContaining(["application", "environment", "stack", "osVersion", "machineType", "count", "extra"]))

      const unknownValues = yield* post(fleet, "/v1/vm-requests", JSON.stringify({
        application: "payments-api", environment: "prod", stack: "cobol", osVersion: "ubuntu-99.04", machineType: "huge", count: 1000
      }))
      expect(unknownValues.status).toBe(400)
      expect(unknownValues.body["_tag"]).toBe("InvalidInput")
      expect((unknownValues.body["issues"] as Array<{ path: Array<string> }>).map((issue) => issue.path.join(".")).sort())
        .toEqual(["count", "environment", "machineType", "osVersion", "stack"])

      // The values the catalog refuses, and a count below 1, in one answer (the README's example).
      const readmeExample = yield* post(fleet, "/v1/vm-requests", JSON.stringify({
        application: "payments-api", environment: "prod", stack: "cobol", osVersion: "ubuntu-99.04", machineType: "n2-standard-4", count: 0
      }))
      expect((readmeExample.body["issues"] as Array<{ path: Array<string> }>).map((issue) => issue.path.join("."))).toEqual(["environment", "stack", "osVersion", "count"])

      const notJson = yield* post(fleet, "/v1/vm-requests", "{ not json")
      expect(notJson.status).toBe(400)
      expect(notJson.body["message"]).toBe("the body is not valid JSON: body:1:3: Expected property name or '}'")
      const trailing = yield* post(fleet, "/v1/vm-requests", "{\"count\": 1}\n x")
      expect(trailing.body["message"]).toBe("the body is not valid JSON: body:2:2: Unexpected non-whitespace character after JSON")
      // The token is checked before the body is read.
      const anonymous = yield* Effect.promise(() =>
        fetch(`${fleet.baseUrl}/v1/vm-requests`, { method: "POST", headers: { "content-type": "application/json" }, body: "{ not json" }))
      expect(anonymous.status).toBe(401)

      expect(yield* rowCounts(fleet.databaseUrl)).toEqual({ requests: 0, vms: 0, executions: 0 })
    }))

  it.scopedLive("says what is wrong in a line per problem: the schema's tree, its optional fields' undefined and each literal of a set left out", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const readable = (answer: { body: Record<string, unknown> }) =>
        [answer.body["message"], (answer.body["issues"] as Array<{ path: Array<string>; message: string }>).map((issue) => `${issue.path.join(".")}: ${issue.message}`)]
      expect(readable(yield* get(fleet, "/v1/vms?state=running&limit=0"))).toEqual([
        "2 problems: state: expected one of pending, submitting, provisioning, ready, failed, timed_out, decommissioning, decommissioned; got \"running\"; limit: " +
          "expected an integer from 1 to 500",
        [
          "state: expected one of pending, submitting, provisioning, ready, failed, timed_out, decommissioning, decommissioned; got \"running\"",
          "limit: expected an integer from 1 to 500"
        ]
      ])
      const badMetadata = yield* post(fleet, "/v1/vm-requests", JSON.stringify({
        application: "payments-api", environment: "production", stack: "java", osVersion: "ubuntu-22.04", machineType: "n2-standard-4", count: 1, metadata: { team: 5, "1bad": "x" }, colour: "red"
      }))
      expect(readable(badMetadata)[1]).toEqual([
        "colour: is not a field of this input; expected one of application, environment, stack, osVersion, machineType, count, metadata",
        "metadata.1bad: is not an allowed key; expected a metadata key: a letter, then up to 62 letters, digits, '_', '.', '-'",
        "metadata.team: expected a string; got 5"
      ])
      // An empty body reads as {}: each field it misses is named.
      const empty = yield* post(fleet, "/v1/vm-requests", "")
      expect(readable(empty)[0]).toBe("6 problems: application: is missing; environment: is missing; stack: is missing; osVersion: is missing; machineType: is missing; count: is missing")
      // A form (curl -d without a Content-Type) is refused as such, not read as one unknown key.
      const form = yield* post(fleet, "/v1/vm-requests", JSON.stringify({ application: "x" }), "application/x-www-form-urlencoded")
      expect([form.status, form.body["_tag"]]).toEqual([415, "UnsupportedMediaType"])
      // JSON under a content type the platform reads as text or bytes: the content type is said to be at fault.
      for (const contentType of ["text/plain", "text/json", "application/x-json"]) {
        const text = yield* post(fleet, "/v1/vm-requests", JSON.stringify({ application: "x" }), contentType)
        expect([text.status, text.body]).toEqual([415, {
          _tag: "UnsupportedMediaType",
          message: `Content-Type ${contentType} is not read as JSON: send JSON with Content-Type: application/json`
        }])
      }
      // An endpoint that takes no body is told what is wrong with its path, whatever content type a client sets.
      const badId = yield* post(fleet, "/v1/vms/not-a-uuid/retry", "", "text/plain")
      expect([badId.status, badId.body["_tag"]]).toEqual([400, "HttpApiDecodeError"])
      expect(yield* rowCounts(fleet.databaseUrl)).toEqual({ requests: 0, vms: 0, executions: 0 })
    }))

  it.scopedLive("answers 404 for ids that do not exist and 400 for malformed ones", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const missing = yield* get(fleet, `/v1/vms/${VmId.make("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")}`)
      expect(missing.status).toBe(404)
      expect(missing.body["_tag"]).toBe("NotFound")
      const malformed = yield* get(fleet, "/v1/vms/not-a-uuid")
      expect(malformed.status).toBe(400)
      const missingRequest = yield* get(fleet, "/v1/vm-requests/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
      expect(missingRequest.status).toBe(404)
      const noRoute = yield* get(fleet, "/v1/nothing-here?x=1")
      expect(noRoute.status).toBe(404)
      // The shape of every other 404, so that a client decodes it as one.
      expect(noRoute.body).toEqual({
        _tag: "NotFound", message: "no such endpoint: GET /v1/nothing-here (see /openapi.json)", resource: "endpoint", id: "GET /v1/nothing-here"
      })
      const badLimit = yield* get(fleet, "/v1/vms?limit=0")
      expect(badLimit.status).toBe(400)
      const badCursor = yield* get(fleet, "/v1/vms?cursor=abc")
      expect(badCursor.status).toBe(400)
    }))
})

describe("listing and inventory", () => {
  it.scopedLive("filters, pages newest first, and counts by group", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      yield* settle(fleet, request({ count: 3 }))
      yield* settle(fleet, request({ application: "search-indexer", stack: "go", osVersion: "ubuntu-22.04", count: 2 }))
      const first = yield* fleet.client.vms.listVms({ urlParams: { limit: 2 } })
      expect(first.items).toHaveLength(2)
      expect(first.items[0]!.application).toBe("search-indexer")
      const rest = yield* fleet.client.vms.listVms({ urlParams: { limit: 10, cursor: first.nextCursor! } })
      expect(rest.items).toHaveLength(3)
      expect(rest.nextCursor).toBeNull()
      const java = yield* fleet.client.vms.listVms({ urlParams: { stack: "java", state: "ready" } })
      expect(java.items.map((vm) => vm.application)).toEqual(["payments-api", "payments-api", "payments-api"])
      const inventory = yield* fleet.client.inventory.inventory({ urlParams: { groupBy: ["application", "osVersion"] } })
      expect(inventory.total).toBe(5)
      expect(inventory.groups).toEqual([
        { application: "payments-api", osVersion: "ubuntu-24.04", count: 3 },
        { application: "search-indexer", osVersion: "ubuntu-22.04", count: 2 }
      ])
    }))
})

