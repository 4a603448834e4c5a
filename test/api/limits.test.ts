import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { request as httpRequest } from "node:http"
import { makeBuckets } from "../../src/http/RateLimit.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"
import { type Answer, field, request, vmRequestBody, withSql } from "./support.js"

/** A POST with a chunked body (no Content-Length), written in pieces, over node:http. */
const chunkedPost = (fleet: TestFleet, path: string, pieces: ReadonlyArray<string>) =>
  Effect.async<{ status: number; body: string }>((resume) => {
    const url = new URL(path, fleet.baseUrl)
    const outgoing = httpRequest(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${fleet.token}`, "transfer-encoding": "chunked" }
    }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    outgoing.on("error", (error) => resume(Effect.die(error)))
    for (const piece of pieces) outgoing.write(piece)
    outgoing.end()
  })

describe("request limits", () => {
  it.scopedLive("refuses bodies over FLEET_MAX_BODY_BYTES with 413 and a JSON body, and writes nothing", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false, settings: { FLEET_MAX_BODY_BYTES: "2048" } })
      const big = vmRequestBody({ metadata: { note: "x".repeat(4000) } })
      const declared = yield* request(fleet, "POST", "/v1/vm-requests", { body: big })
      expect(declared.status).toBe(413)
      expect(declared.json).toEqual({ _tag: "PayloadTooLarge", message: "the request body is larger than 2048 bytes" })
      const chunked = yield* chunkedPost(fleet, "/v1/vm-requests", [big.slice(0, 1500), big.slice(1500)])
      expect(chunked.status).toBe(413)
      expect(JSON.parse(chunked.body)).toEqual({ _tag: "PayloadTooLarge", message: "the request body is larger than 2048 bytes" })
      // Under the limit, chunked or not, it is read as usual.
      const small = vmRequestBody()
      expect((yield* chunkedPost(fleet, "/v1/vm-requests", [small.slice(0, 20), small.slice(20)])).status).toBe(202)
      expect((yield* request(fleet, "POST", "/v1/vm-requests", { body: small })).status).toBe(202)
      const counts = yield* withSql(fleet, (sql) => sql<{ n: number }>`select count(*)::int as n from vm_requests`)
      expect(counts[0]!.n).toBe(2)
    }))

  it.scopedLive("answers 429 with Retry-After once a token has used its rate, per token", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false, settings: { FLEET_RATE_LIMIT: "1", FLEET_RATE_BURST: "5" } })
      const other = yield* fleet.createToken({ name: "other", scopes: ["vms:read"] })
      const statuses: Array<number> = []
      let limited: Answer | undefined
      for (let index = 0; index < 8; index++) {
        const answer = yield* request(fleet, "GET", "/v1/vms")
        statuses.push(answer.status)
        if (answer.status === 429) limited = answer
      }
      // The burst of 5, then (at 1 per second) 429s: a sixth token may have dripped in on a slow machine.
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200])
      expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(2)
      expect(limited!.headers.get("retry-after")).toMatch(/^[1-9][0-9]*$/)
      expect(field(limited!, "_tag")).toBe("TooManyRequests")
      expect(field(limited!, "retryAfterSeconds")).toBe(Number(limited!.headers.get("retry-after")))
      // Another token has a bucket of its own.
      expect((yield* request(fleet, "GET", "/v1/vms", { token: other })).status).toBe(200)
      // Liveness is never limited (and needs no token).
      expect((yield* request(fleet, "GET", "/healthz", { token: null })).status).toBe(200)
    }))

  it("token buckets refill at the rate, up to the burst", () => {
    let now = 0
    const take = makeBuckets(2, 3, () => now)
    expect([take("a"), take("a"), take("a")].every((decision) => decision._tag === "Allowed")).toBe(true)
    const refused = take("a")
    expect(refused).toEqual({ _tag: "Limited", retryAfterSeconds: 1 })
    expect(take("b")._tag).toBe("Allowed")
    now = 500 // one token back at 2 per second
    expect(take("a")._tag).toBe("Allowed")
    expect(take("a")._tag).toBe("Limited")
    now = 100_000 // never more than the burst
    expect([take("a"), take("a"), take("a"), take("a")].map((decision) => decision._tag)).toEqual(["Allowed", "Allowed", "Allowed", "Limited"])
    expect(makeBuckets(0, 1)("a")._tag).toBe("Allowed")
  })
})
