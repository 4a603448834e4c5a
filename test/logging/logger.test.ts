import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect } from "effect"
import { layerWith, makePino } from "../../src/logging/Logger.js"
import { CapturedLogs } from "../support/Fleet.js"

const logged = (effect: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const logs = new CapturedLogs()
    yield* effect.pipe(Effect.provide(layerWith(makePino({ format: "json", destination: logs.stream }))))
    return logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  })

describe("the pino logger", () => {
  it.effect("writes a plain object among the message's parts as fields, anything else as text", () =>
    Effect.gen(function* () {
      const [line] = yield* logged(
        Effect.logInfo("Sent HTTP response", { "http.status": 200, "http.url": "/v1/vms" }, [1, 2], new Date(0)).pipe(
          Effect.annotateLogs({ run: "r1" })
        )
      )
      expect(line).toMatchObject({ level: 30, msg: "Sent HTTP response [1,2] \"1970-01-01T00:00:00.000Z\"", "http.status": 200, "http.url": "/v1/vms", run: "r1" })
    }))

  it.effect("writes a logged failure as err, and its first line as the message when there is none", () =>
    Effect.gen(function* () {
      const [withText, alone] = yield* logged(
        Effect.zipRight(Effect.logError("request failed", { "http.status": 500 }, Cause.fail(new Error("boom"))), Effect.logError(Cause.die(new Error("alone"))))
      )
      expect(withText).toMatchObject({ level: 50, msg: "request failed", "http.status": 500 })
      expect(String(withText!["err"])).toContain("boom")
      expect(alone!["msg"]).toContain("alone")
    }))

  it.effect("redacts secret fields given as message fields", () =>
    Effect.gen(function* () {
      const [line] = yield* logged(Effect.logWarning("odd request", { token: "fleet_secret", headers: { authorization: "Bearer x" } }))
      expect(JSON.stringify(line)).not.toContain("fleet_secret")
      expect(JSON.stringify(line)).not.toContain("Bearer x")
    }))
})
