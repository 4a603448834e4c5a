import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { CreateVmRequest, createVmsAndWait, FleetClient, startReplacementAndWait } from "fleet/client"
import { startFleet } from "../support/Fleet.js"

describe("fleet/client", () => {
  it.scopedLive("is exported by the package, sends its token, and reads 401, 403 and 429 as typed errors", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ settings: { FLEET_RATE_LIMIT: "1", FLEET_RATE_BURST: "30" } })
      const client = yield* FleetClient.make({ baseUrl: fleet.baseUrl, token: fleet.token })
      const request = new CreateVmRequest({
        application: "payments-api", environment: "staging", stack: "go", osVersion: "ubuntu-22.04", machineType: "e2-small", count: 2
      })
      const settled = yield* createVmsAndWait(client, request, { timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis" })
      expect(settled.state).toBe("ready")
      expect(settled.requestedBy).toBe("admin@example.com")

      const anonymous = yield* FleetClient.make({ baseUrl: fleet.baseUrl })
      const unauthorized = yield* Effect.either(anonymous.vms.listVms({ urlParams: {} }))
      expect(Either.isLeft(unauthorized) && unauthorized.left._tag).toBe("Unauthorized")

      const reader = yield* FleetClient.make({ baseUrl: fleet.baseUrl, token: yield* fleet.createToken({ name: "reader", scopes: ["vms:read"] }) })
      const forbidden = yield* Effect.either(reader.vms.createRequest({ payload: request }))
      expect(Either.isLeft(forbidden) && forbidden.left._tag).toBe("Forbidden")
      if (Either.isLeft(forbidden) && forbidden.left._tag === "Forbidden") expect(forbidden.left.scope).toBe("vms:write")

      let limited: string | undefined
      for (let index = 0; index < 100 && limited === undefined; index++) {
        const answer = yield* Effect.either(reader.vms.listVms({ urlParams: { limit: 1 } }))
        if (Either.isLeft(answer)) limited = answer.left._tag
      }
      expect(limited).toBe("TooManyRequests")
    }))

  it.scopedLive("starts the replacement of an application's fleet and waits for its run", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 30, destroy: 10, check: 10 } } })
      const fast = { timeout: "30 seconds", initialDelay: "20 millis", maxDelay: "200 millis" } as const
      const old = yield* createVmsAndWait(fleet.client, new CreateVmRequest({
        application: "payments-api", environment: "production", stack: "java", osVersion: "ubuntu-20.04", machineType: "e2-small", count: 2
      }), fast)
      expect(old.state).toBe("ready")
      const operator = yield* FleetClient.make({
        baseUrl: fleet.baseUrl,
        token: yield* fleet.createToken({ name: "operator", scopes: ["runs:write", "plans:read"], applications: ["payments-*"] })
      })
      const run = yield* startReplacementAndWait(operator, "payments-api", { environment: "production" }, fast)
      expect(run.state).toBe("succeeded")
      expect(run.trigger).toBe("on-demand")
      const live = (yield* fleet.client.vms.listVms({ urlParams: { application: "payments-api" } })).items.filter((vm) => vm.state === "ready")
      expect(live).toHaveLength(2)
      expect(live.every((vm) => vm.osVersion !== "ubuntu-20.04")).toBe(true)
      // The limited token may not replace another application's fleet.
      const refused = yield* Effect.either(startReplacementAndWait(operator, "search-api", { environment: "production" }, fast))
      expect(Either.isLeft(refused) && refused.left._tag).toBe("Forbidden")
    }))
})
