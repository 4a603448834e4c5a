import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startFleet } from "../support/Fleet.js"
import { field, request, vmRequestBody, withSql } from "./support.js"

interface Event {
  readonly id: string
  readonly at: string
  readonly actor: string
  readonly kind: string
  readonly application: string | null
  readonly requestId: string | null
  readonly vmId: string | null
  readonly reason: string
  readonly fromState: string | null
  readonly toState: string | null
}

const items = (answer: { json: unknown }) => (answer.json as { items: Array<Event> }).items

describe("GET /v1/events", () => {
  it.scopedLive("lists state changes and mutating requests with who, what, when and why; filtered and paged", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const ci = yield* fleet.createToken({ name: "ci-bot", ownerEmail: "ci@example.com", scopes: ["vms:write", "vms:read"] })
      const first = yield* request(fleet, "POST", "/v1/vm-requests", { token: ci, body: vmRequestBody({ count: 2 }) })
      const second = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ application: "search-indexer", stack: "go" }) })
      expect([first.status, second.status]).toEqual([202, 202])
      const firstVm = (field(first, "vms") as Array<{ id: string }>)[0]!.id

      const all = items(yield* request(fleet, "GET", "/v1/events?limit=500"))
      // Newest first, ids strictly decreasing.
      expect(all.map((event) => BigInt(event.id))).toEqual([...all.map((event) => BigInt(event.id))].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)))
      const kinds = all.map((event) => event.kind)
      expect(kinds.filter((kind) => kind === "request.accepted")).toHaveLength(2)
      expect(kinds.filter((kind) => kind === "vm.state")).toHaveLength(3)
      expect(kinds.filter((kind) => kind === "http.request")).toHaveLength(2)
      expect(kinds.filter((kind) => kind === "token.created")).toHaveLength(2) // the test's admin token, and ci-bot
      const accepted = all.find((event) => event.kind === "request.accepted" && event.actor === "ci@example.com")!
      expect(accepted).toMatchObject({ application: "payments-api", requestId: field(first, "id"), reason: "2 VM(s) requested" })
      const audit = all.find((event) => event.kind === "http.request" && event.actor === "ci@example.com")!
      expect(audit.reason).toBe("POST /v1/vm-requests → 202 (token ci-bot)")
      expect(new Date(audit.at).getTime()).toBeGreaterThan(Date.now() - 60_000)

      const byApplication = items(yield* request(fleet, "GET", "/v1/events?application=search-indexer"))
      expect(byApplication.map((event) => event.kind).sort()).toEqual(["request.accepted", "vm.state"])
      const byVm = items(yield* request(fleet, "GET", `/v1/events?vm=${firstVm}`))
      expect(byVm).toEqual([expect.objectContaining({ kind: "vm.state", vmId: firstVm, fromState: null, toState: "pending", actor: "ci@example.com" })])
      const byRequest = items(yield* request(fleet, "GET", `/v1/events?request=${field(first, "id")}`))
      expect(byRequest).toHaveLength(3)
      const byActor = items(yield* request(fleet, "GET", "/v1/events?actor=ci@example.com&kind=vm.state"))
      expect(byActor).toHaveLength(2)
      expect(items(yield* request(fleet, "GET", `/v1/events?run=${firstVm}`))).toEqual([])

      // Time range: since is inclusive, until exclusive.
      yield* withSql(fleet, (sql) => sql`update events set at = '2020-01-01T00:00:00Z' where kind = 'token.created'`)
      const old = items(yield* request(fleet, "GET", "/v1/events?until=2021-01-01T00:00:00Z"))
      expect(old.map((event) => event.kind)).toEqual(["token.created", "token.created"])
      const recent = items(yield* request(fleet, "GET", "/v1/events?since=2021-01-01T00:00:00Z&limit=500"))
      expect(recent).toHaveLength(all.length - 2)

      // Keyset pages: together, every event once, in order.
      const seen: Array<string> = []
      let cursor: string | null = null
      for (let page = 0; page < 20; page++) {
        const answer = yield* request(fleet, "GET", `/v1/events?limit=3${cursor === null ? "" : `&cursor=${cursor}`}`)
        expect(answer.status).toBe(200)
        seen.push(...items(answer).map((event) => event.id))
        cursor = field(answer, "nextCursor") as string | null
        if (cursor === null) break
      }
      expect(seen).toEqual(all.map((event) => event.id))

      for (const query of ["cursor=abc", "since=yesterday", "vm=not-a-uuid", "limit=0", "colour=red", `actor=${"a".repeat(300)}`]) {
        const refused = yield* request(fleet, "GET", `/v1/events?${query}`)
        expect(refused.status, query).toBe(400)
      }
      // What JavaScript would read as something, a person would not have meant.
      const refusedAt = (query: string) =>
        Effect.map(request(fleet, "GET", `/v1/events?${query}`), (answer) => [answer.status, (answer.json as { message: string }).message])
      const time = "expected a date-time such as 2025-05-31T12:00:00Z (or a day, 2025-05-31)"
      expect(yield* refusedAt("since=1")).toEqual([400, `since: ${time}`])
      expect(yield* refusedAt("since=2025-05-31T12:00:00")).toEqual([400, `since: ${time}`])
      expect(yield* refusedAt("since=2025-02-30")).toEqual([400, "since: expected a day the calendar has, not 2025-02-30"])
      expect(yield* refusedAt("since=2025-05-31T24:00:00Z")).toEqual([400, `since: ${time}`])
      expect(yield* refusedAt("limit=1e2")).toEqual([400, "limit: expected an integer from 1 to 500"])
      expect(yield* refusedAt("limit=0x10")).toEqual([400, "limit: expected an integer from 1 to 500"])
      expect(yield* refusedAt("application=")).toEqual([400, "application: expected an application name, not an empty string"])
      expect(yield* refusedAt("since=2025-06-01&until=2025-05-31")).toEqual([400, "until: expected a time at or after since (2025-06-01T00:00:00.000Z)"])
      expect((yield* request(fleet, "GET", "/v1/events?since=2025-05-31&until=2025-06-01T00:00:00%2B02:00&limit=100")).status).toBe(200)
    }))

  it.scopedLive("orders events by their number, not their text, past the ninth, and pages through all of them", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const created = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 8 }) })
      expect(created.status).toBe(202)
      const ids = (yield* withSql(fleet, (sql) => sql<{ id: string }>`select id::text as id from events order by events.id desc`)).map((row) => row.id)
      expect(ids.length).toBeGreaterThan(10)
      expect(items(yield* request(fleet, "GET", "/v1/events?limit=500")).map((event) => event.id)).toEqual(ids)
      const seen: Array<string> = []
      let cursor: string | null = null
      for (let page = 0; page < ids.length; page++) {
        const answer = yield* request(fleet, "GET", `/v1/events?limit=4${cursor === null ? "" : `&cursor=${cursor}`}`)
        seen.push(...items(answer).map((event) => event.id))
        cursor = field(answer, "nextCursor") as string | null
        if (cursor === null) break
      }
      expect(seen).toEqual(ids)
    }))

  it.scopedLive("records token creation, and shows token administration and request records to admin tokens only", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const reader = yield* fleet.createToken({ name: "reader", scopes: ["vms:read"] })
      // A request of the admin token's: its record names the token, and the endpoint may be anything.
      expect((yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody() })).status).toBe(202)
      const readerSees = items(yield* request(fleet, "GET", "/v1/events?limit=500", { token: reader }))
      expect(readerSees.map((event) => event.kind).sort()).toEqual(["request.accepted", "vm.state"])
      expect(items(yield* request(fleet, "GET", "/v1/events?kind=http.request")).map((event) => event.reason)).toEqual([
        "POST /v1/vm-requests → 202 (token test-admin)"
      ])
      yield* fleet.createToken({ name: "temporary", scopes: ["vms:read"] })
      const asAdmin = items(yield* request(fleet, "GET", "/v1/events?kind=token.created"))
      expect(asAdmin.map((event) => event.reason).sort()).toEqual([
        "token reader for reader@example.com: vms:read",
        "token temporary for temporary@example.com: vms:read",
        "token test-admin for admin@example.com: admin"
      ])
      expect(asAdmin.every((event) => event.actor === "test@example.com")).toBe(true)
      expect(items(yield* request(fleet, "GET", "/v1/events?kind=token.created", { token: reader }))).toEqual([])
    }))
})
