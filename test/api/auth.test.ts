import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { waitForRequest } from "../../src/client/Client.js"
import { RequestId } from "../../src/vms/Domain.js"
import { allScopes, type Scope } from "../../src/auth/Scopes.js"
import { routes } from "../../src/http/Routes.js"
import { startFleet } from "../support/Fleet.js"
import { field, request, vmRequestBody, withSql } from "./support.js"

describe("authentication", () => {
  it.scopedLive("answers 401 with one JSON body whatever is wrong with the token; liveness, readiness and docs are public", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const revoked = yield* fleet.createToken({ name: "soon-revoked", scopes: ["admin"] })
      yield* withSql(fleet, (sql) => sql`update api_tokens set revoked_at = now() where name = 'soon-revoked'`)
      const wellFormedUnknown = `fleet_${"A".repeat(43)}`
      const attempts: ReadonlyArray<Record<string, string>> = [
        {},
        { authorization: "" },
        { authorization: "Bearer" },
        { authorization: "Bearer " },
        { authorization: "Basic dXNlcjpwYXNz" },
        { authorization: `Token ${fleet.token}` },
        { authorization: "Bearer not-a-token" },
        { authorization: `Bearer ${wellFormedUnknown}` },
        { authorization: `Bearer ${fleet.token}x` },
        { authorization: `Bearer ${revoked}` },
        { authorization: `Bearer ${fleet.token.toUpperCase()}` }
      ]
      const bodies = new Set<string>()
      for (const headers of attempts) {
        for (const [method, path, body] of [
          ["GET", "/v1/vms", undefined],
          ["POST", "/v1/vm-requests", vmRequestBody()],
          ["GET", "/v1/vms/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", undefined],
          ["GET", "/v1/events", undefined],
          ["GET", "/metrics", undefined]
        ] as const) {
          const answer = yield* request(fleet, method, path, { token: null, headers, body })
          expect(answer.status, `${method} ${path} with ${JSON.stringify(headers)}`).toBe(401)
          expect(answer.headers.get("content-type")).toContain("application/json")
          expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="fleet"')
          bodies.add(answer.text)
        }
      }
      // The same answer for every reason: nothing tells an attacker which tokens exist.
      expect([...bodies]).toHaveLength(1)
      expect(JSON.parse([...bodies][0]!)).toEqual({ _tag: "Unauthorized", message: expect.any(String) })
      // The scheme is case-insensitive, as RFC 7235 says.
      expect((yield* request(fleet, "GET", "/v1/vms", { token: null, headers: { authorization: `bearer ${fleet.token}` } })).status).toBe(200)

      for (const path of ["/healthz", "/readyz", "/openapi.json", "/docs"]) {
        expect((yield* request(fleet, "GET", path, { token: null })).status, path).toBe(200)
      }
    }))

  it.scopedLive("records the token owner's email on requests, VMs and events, and sends it to proctor as Email-Id", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      const ci = yield* fleet.createToken({ name: "ci-bot", ownerEmail: "ci@example.com", scopes: ["vms:write", "vms:read"] })
      const created = yield* request(fleet, "POST", "/v1/vm-requests", { token: ci, body: vmRequestBody({ count: 2 }) })
      expect(created.status).toBe(202)
      const settled = yield* waitForRequest(fleet.client, RequestId.make(field(created, "id") as string), {
        timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis"
      })
      expect(settled.requestedBy).toBe("ci@example.com")
      expect(settled.vms.map((vm) => vm.createdBy)).toEqual(["ci@example.com", "ci@example.com"])
      expect(settled.vms[0]!.history[0]!.actor).toBe("ci@example.com")
      const emails = yield* withSql(fleet, (sql) => sql<{ emailId: string }>`select distinct email_id from executions`)
      expect(emails.map((row) => row.emailId)).toEqual(["ci@example.com"])
      const used = yield* withSql(fleet, (sql) => sql<{ lastUsedAt: Date | null }>`select last_used_at from api_tokens where name = 'ci-bot'`)
      expect(used[0]!.lastUsedAt).toBeInstanceOf(Date)
    }))
})

describe("authorization", () => {
  it.scopedLive("answers 403 naming the missing scope", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const reader = yield* fleet.createToken({ name: "reader", scopes: ["vms:read"] })
      const writer = yield* fleet.createToken({ name: "writer", scopes: ["vms:write"] })
      const scraper = yield* fleet.createToken({ name: "scraper", scopes: ["metrics:read"] })

      const post = yield* request(fleet, "POST", "/v1/vm-requests", { token: reader, body: vmRequestBody() })
      expect(post.status).toBe(403)
      expect(post.json).toEqual({ _tag: "Forbidden", message: "this token lacks the scope vms:write", scope: "vms:write" })
      const list = yield* request(fleet, "GET", "/v1/vms", { token: writer })
      expect(list.status).toBe(403)
      expect(field(list, "scope")).toBe("vms:read")
      for (const path of ["/v1/inventory", "/v1/events", "/v1/vms/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"]) {
        expect(field(yield* request(fleet, "GET", path, { token: scraper }), "scope"), path).toBe("vms:read")
      }
      const metrics = yield* request(fleet, "GET", "/metrics", { token: reader })
      expect(metrics.status).toBe(403)
      expect(field(metrics, "scope")).toBe("metrics:read")
      expect((yield* request(fleet, "GET", "/metrics", { token: scraper })).status).toBe(200)
      expect((yield* request(fleet, "GET", "/v1/vms", { token: reader })).status).toBe(200)
      // Nothing was written by the refused POST.
      const [counts] = yield* withSql(fleet, (sql) => sql<{ requests: number }>`select count(*)::int as requests from vm_requests`)
      expect(counts!.requests).toBe(0)
    }))

  it.scopedLive("limits a token to its applications: 403 for others it names, and lists, counts and events show only its own", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const payments = yield* fleet.createToken({ name: "payments", scopes: ["vms:read", "vms:write"], applications: ["payments-*"] })
      const own = yield* request(fleet, "POST", "/v1/vm-requests", { token: payments, body: vmRequestBody({ application: "payments-api", count: 2 }) })
      expect(own.status).toBe(202)
      const other = yield* request(fleet, "POST", "/v1/vm-requests", { token: payments, body: vmRequestBody({ application: "search-indexer" }) })
      expect(other.status).toBe(403)
      expect(other.json).toEqual({
        _tag: "Forbidden",
        message: "this token is not allowed the application search-indexer",
        application: "search-indexer"
      })
      // The admin token makes a VM of another application.
      const search = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ application: "search-indexer" }) })
      expect(search.status).toBe(202)
      const searchVm = (field(search, "vms") as Array<{ id: string }>)[0]!.id

      const listed = yield* request(fleet, "GET", "/v1/vms", { token: payments })
      expect((field(listed, "items") as Array<{ application: string }>).map((vm) => vm.application)).toEqual(["payments-api", "payments-api"])
      expect((field(yield* request(fleet, "GET", "/v1/vms"), "items") as Array<unknown>)).toHaveLength(3)
      expect((yield* request(fleet, "GET", "/v1/vms?application=search-indexer", { token: payments })).status).toBe(403)

      const inventory = yield* request(fleet, "GET", "/v1/inventory?groupBy=application", { token: payments })
      expect(inventory.json).toEqual({ groupBy: ["application"], total: 2, groups: [{ application: "payments-api", count: 2 }] })

      // By id, another application's VM and request are as if they did not exist.
      const hidden = yield* request(fleet, "GET", `/v1/vms/${searchVm}`, { token: payments })
      expect(hidden.status).toBe(404)
      expect((yield* request(fleet, "GET", `/v1/vm-requests/${field(search, "id")}`, { token: payments })).status).toBe(404)
      expect((yield* request(fleet, "POST", `/v1/vms/${searchVm}/decommission`, { token: payments })).status).toBe(404)
      expect((yield* request(fleet, "GET", `/v1/vms/${searchVm}`)).status).toBe(200)

      const events = yield* request(fleet, "GET", "/v1/events?limit=500", { token: payments })
      const applications = new Set((field(events, "items") as Array<{ application: string | null }>).map((event) => event.application))
      expect([...applications]).toEqual(["payments-api"])
    }))

  it.scopedLive("lets a vms:write token retry and decommission its VMs without vms:read, which reading still needs", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const writer = yield* fleet.createToken({ name: "writer", scopes: ["vms:write"], applications: ["payments-*"] })
      const created = yield* request(fleet, "POST", "/v1/vm-requests", { token: writer, body: vmRequestBody({ application: "payments-api", count: 2 }) })
      expect(created.status).toBe(202)
      const [ready, failed] = (field(created, "vms") as Array<{ id: string }>).map((vm) => vm.id) as [string, string]
      yield* withSql(fleet, (sql) => sql`update vms set state = case when id = ${ready} then 'ready' else 'failed' end where id in (${ready}, ${failed})`)

      const removed = yield* request(fleet, "POST", `/v1/vms/${ready}/decommission`, { token: writer })
      expect([removed.status, field(removed, "state")]).toEqual([202, "decommissioning"])
      const retried = yield* request(fleet, "POST", `/v1/vms/${failed}/retry`, { token: writer })
      expect([retried.status, field(retried, "state")]).toEqual([202, "pending"])

      const read = yield* request(fleet, "GET", `/v1/vms/${ready}`, { token: writer })
      expect([read.status, read.json]).toEqual([403, { _tag: "Forbidden", message: "this token lacks the scope vms:read", scope: "vms:read" }])
    }))

  it.scopedLive("refuses a token without the endpoint's scope before reading its input: 403, not the 400 the input would get", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const reader = yield* fleet.createToken({ name: "reader", scopes: ["vms:read"] })
      const empty = yield* request(fleet, "POST", "/v1/vm-requests", { token: reader, body: "{}" })
      expect([empty.status, empty.json]).toEqual([403, { _tag: "Forbidden", message: "this token lacks the scope vms:write", scope: "vms:write" }])
      const garbled = yield* request(fleet, "POST", "/v1/plans?dryRun=maybe", { token: reader, body: "::", headers: { "content-type": "application/yaml" } })
      expect([garbled.status, garbled.json]).toEqual([403, { _tag: "Forbidden", message: "this token lacks the scope plans:read", scope: "plans:read" }])
      expect((yield* withSql(fleet, (sql) => sql<{ n: number }>`select count(*)::int as n from vm_requests`))[0]!.n).toBe(0)
    }))

  it.scopedLive("every endpoint that needs a token names its scope, which a token with that scope alone passes and one without it does not", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const authenticated = routes.filter((route) => route.authenticated)
      expect(authenticated.length).toBeGreaterThan(20)
      expect(authenticated.filter((route) => route.scope === undefined).map((route) => `${route.method} ${route.path}`)).toEqual([])
      const tokens = new Map<string, string>()
      const tokenWith = (scopes: ReadonlyArray<Scope>) =>
        Effect.gen(function* () {
          const key = scopes.join(",")
          if (!tokens.has(key)) tokens.set(key, yield* fleet.createToken({ name: `t${tokens.size}`, scopes: [...scopes] }))
          return tokens.get(key)!
        })
      for (const route of authenticated) {
        const scope = route.scope!
        // A path of the template, with values of the right shape; a dry run where saving would need more.
        const path = route.path
          .replace(/:application/, "payments-api").replace(/:os/, "ubuntu-24.04").replace(/:\w+/g, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b") +
          (route.path === "/v1/plans" && route.method === "POST" ? "?dryRun=true" : "")
        const body = route.hasPayload ? "{}" : undefined
        const refusedFor = (answer: { status: number; json: unknown }) =>
          answer.status === 403 ? (answer.json as { scope?: string }).scope : undefined
        const alone = yield* request(fleet, route.method, path, { token: yield* tokenWith([scope]), body })
        expect(refusedFor(alone), `${route.method} ${route.path} with ${scope} alone`).toBeUndefined()
        const others = yield* request(fleet, route.method, path, { token: yield* tokenWith(allScopes.filter((each) => each !== scope && each !== "admin")), body })
        expect(refusedFor(others), `${route.method} ${route.path} without ${scope}`).toBe(scope)
      }
    }))
})
