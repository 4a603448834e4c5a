import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startFleet } from "../support/Fleet.js"
import { field, request, vmRequestBody, withSql } from "./support.js"

const requestCount = (fleet: Parameters<typeof withSql>[0]) =>
  withSql(fleet, (sql) => sql<{ n: number }>`select count(*)::int as n from vm_requests`).pipe(Effect.map((rows) => rows[0]!.n))

describe("Idempotency-Key", () => {
  it.scopedLive("replays the first answer for the same key and body, creates nothing new, and refuses another body with 422", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const headers = { "idempotency-key": "create-payments-1" }
      const first = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 2 }), headers })
      expect(first.status).toBe(202)
      expect(first.headers.get("idempotent-replayed")).toBeNull()
      const again = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 2 }), headers })
      expect(again.status).toBe(202)
      expect(again.text).toBe(first.text)
      expect(again.headers.get("content-type")).toContain("application/json")
      expect(again.headers.get("idempotent-replayed")).toBe("true")
      expect(yield* requestCount(fleet)).toBe(1)

      const different = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 3 }), headers })
      expect(different.status).toBe(422)
      expect(field(different, "_tag")).toBe("IdempotencyKeyReused")
      // Another endpoint with the same key is a different request too.
      const elsewhere = yield* request(fleet, "POST", "/v1/vms/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/retry", { headers })
      expect(elsewhere.status).toBe(422)
      expect(yield* requestCount(fleet)).toBe(1)

      // Without a key, every POST creates.
      expect((yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody() })).status).toBe(202)
      expect(yield* requestCount(fleet)).toBe(2)
      // The retry and the audit record of the request: one each for the two accepted POSTs, none for the replay.
      const audits = yield* withSql(fleet, (sql) => sql<{ n: number }>`select count(*)::int as n from events where kind = 'http.request'`)
      expect(audits[0]!.n).toBe(2)
    }))

  it.scopedLive("keeps keys per token, forgets failed requests, expires keys, and rejects malformed keys", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const other = yield* fleet.createToken({ name: "other", scopes: ["vms:write"] })
      const headers = { "idempotency-key": "k1" }
      const mine = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody(), headers })
      const theirs = yield* request(fleet, "POST", "/v1/vm-requests", { token: other, body: vmRequestBody(), headers })
      expect([mine.status, theirs.status]).toEqual([202, 202])
      expect(field(theirs, "id")).not.toBe(field(mine, "id"))
      expect(yield* requestCount(fleet)).toBe(2)

      // A 4xx is not kept: the same key may be used again once the request is fixed.
      const invalid = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 0 }), headers: { "idempotency-key": "k2" } })
      expect(invalid.status).toBe(400)
      const fixed = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 1 }), headers: { "idempotency-key": "k2" } })
      expect(fixed.status).toBe(202)
      expect(yield* requestCount(fleet)).toBe(3)

      // Past its expiry a key is new again.
      yield* withSql(fleet, (sql) => sql`update idempotency_keys set expires_at = now() - interval '1 second' where key = 'k1'`)
      const afterExpiry = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody(), headers })
      expect(afterExpiry.status).toBe(202)
      expect(afterExpiry.headers.get("idempotent-replayed")).toBeNull()
      expect(field(afterExpiry, "id")).not.toBe(field(mine, "id"))

      for (const key of ["", "a b", "é", "x".repeat(256)]) {
        const refused = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody(), headers: { "idempotency-key": key } })
        expect(refused.status, JSON.stringify(key)).toBe(400)
        expect(field(refused, "_tag")).toBe("HttpApiDecodeError")
      }
      // A key with a token that is not valid claims nothing: 401, and no row.
      const noToken = yield* request(fleet, "POST", "/v1/vm-requests", { token: `fleet_${"B".repeat(43)}`, body: vmRequestBody(), headers: { "idempotency-key": "k3" } })
      expect(noToken.status).toBe(401)
      const keys = yield* withSql(fleet, (sql) => sql<{ key: string }>`select key from idempotency_keys order by key`)
      expect(keys.map((row) => row.key)).toEqual(["k1", "k1", "k2"])
    }))

  it.scopedLive("lets one of many concurrent duplicates create: the others get the same answer or 409, never a second request", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const headers = { "idempotency-key": "burst" }
      const answers = yield* Effect.all(
        Array.from({ length: 20 }, () => request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 3 }), headers })),
        { concurrency: "unbounded" }
      )
      const created = answers.filter((answer) => answer.status === 202)
      expect(created.length).toBeGreaterThanOrEqual(1)
      expect(new Set(created.map((answer) => field(answer, "id"))).size).toBe(1)
      for (const answer of answers) expect([202, 409]).toContain(answer.status)
      for (const answer of answers.filter((answer) => answer.status === 409)) expect(field(answer, "_tag")).toBe("IdempotencyKeyInProgress")
      expect(yield* requestCount(fleet)).toBe(1)
      const vms = yield* withSql(fleet, (sql) => sql<{ n: number }>`select count(*)::int as n from vms`)
      expect(vms[0]!.n).toBe(3)
    }))
})
