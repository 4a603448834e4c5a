import { describe, expect, it } from "@effect/vitest"
import { Effect, LogLevel } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { waitForRequest } from "../../src/client/Client.js"
import { RequestId } from "../../src/vms/Domain.js"
import { startFleet } from "../support/Fleet.js"
import { field, request, vmRequestBody, withSql } from "./support.js"

describe("secrets in logs", () => {
  it.scopedLive("no API token, token hash or proctor access token appears in any log line, at every level", () =>
    Effect.gen(function* () {
      const proctorToken = `proctor-${randomBytes(16).toString("hex")}`
      const fleet = yield* startFleet({
        logLevel: LogLevel.All,
        proctorAuth: { accessToken: proctorToken, users: ["admin@example.com", "ci@example.com", "fleet@localhost"] }
      })
      const ci = yield* fleet.createToken({ name: "ci-bot", ownerEmail: "ci@example.com", scopes: ["vms:write", "vms:read"] })
      const revoked = yield* fleet.createToken({ name: "old", scopes: ["admin"] })
      yield* withSql(fleet, (sql) => sql`update api_tokens set revoked_at = now() where name = 'old'`)
      const unknown = `fleet_${randomBytes(32).toString("base64url")}`

      // Work that goes through proctor (with its access token) and through every part of the API.
      const accepted = yield* request(fleet, "POST", "/v1/vm-requests", { token: ci, body: vmRequestBody({ count: 2 }), headers: { "idempotency-key": "k1" } })
      expect(accepted.status).toBe(202)
      yield* request(fleet, "POST", "/v1/vm-requests", { token: ci, body: vmRequestBody({ count: 2 }), headers: { "idempotency-key": "k1" } })
      const settled = yield* waitForRequest(fleet.client, RequestId.make(field(accepted, "id") as string), {
        timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis"
      })
      expect(settled.state).toBe("ready")
      yield* request(fleet, "POST", `/v1/vms/${settled.vms[0]!.id}/decommission`)
      for (const token of [ci, revoked, unknown, fleet.token]) {
        yield* request(fleet, "GET", "/v1/vms", { token })
        yield* request(fleet, "GET", "/v1/vms/not-a-uuid", { token })
        yield* request(fleet, "POST", "/v1/vm-requests", { token, body: "{ broken" })
        yield* request(fleet, "GET", "/metrics", { token })
        yield* request(fleet, "GET", "/v1/events", { token, headers: { "x-api-key": token, cookie: `session=${token}` } })
        yield* request(fleet, "GET", "/v1/vms", { token: null, headers: { authorization: `Basic ${Buffer.from(`user:${token}`).toString("base64")}` } })
        yield* request(fleet, "GET", "/v1/vms", { token: null, headers: { authorization: token } })
      }
      const proctorCalls = (yield* fleet.simulator.stats).calls
      expect(proctorCalls).toBeGreaterThan(2)

      const text = fleet.logs.text
      // The logs are there: the request log (refused requests too, which carried the tokens), proctor's executions.
      expect(fleet.logs.lines.length).toBeGreaterThan(30)
      expect(text).toContain('"http.status":401')
      expect(text).toContain('"http.url":"/v1/events"')
      expect(text).toContain("proctor accepted execution")
      // An execution's lines say which VM, execution and proc they are about.
      const accepting = fleet.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => String(line["msg"]).includes("proctor accepted execution"))
      expect(accepting.length).toBeGreaterThan(0)
      for (const line of accepting) {
        expect(settled.vms.map((vm) => vm.name)).toContain(line["vm"])
        expect(line["execution"]).toEqual(expect.any(String))
        expect(String(line["proc"])).toMatch(/^(create-vm|decommission-vm)/)
      }
      expect(accepting.some((line) => String(line["proc"]).startsWith("create-vm"))).toBe(true)
      const secrets = [proctorToken, ci, revoked, unknown, fleet.token]
      for (const secret of secrets) {
        expect(text.includes(secret), "a token is in the logs").toBe(false)
        expect(text.includes(secret.slice(6, 26)), "part of a token is in the logs").toBe(false)
        expect(text.includes(createHash("sha256").update(secret).digest("hex")), "a token's hash is in the logs").toBe(false)
        expect(text.includes(Buffer.from(`user:${secret}`).toString("base64")), "a basic credential is in the logs").toBe(false)
      }
    }))
})
