import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { labelSet, proctorCalls, proctorDuration } from "../../src/metrics/Metrics.js"
import { instrumentProctor } from "../../src/metrics/Proctor.js"
import { ExecutionId, ExecutionNotFound, ProctorPermanentError, ProctorTransientError } from "../../src/proctor/Domain.js"
import type { ProctorClientService } from "../../src/proctor/ProctorClient.js"

const calls = (operation: string, outcome: string) => proctorCalls.unsafeValue(labelSet(["operation", operation], ["outcome", outcome])).count
const timed = (operation: string) => proctorDuration.unsafeValue(labelSet(["operation", operation])).count

describe("proctor call metrics", () => {
  it.live("count each call by operation and outcome and time it; an interrupted call is neither", () =>
    Effect.gen(function* () {
      const client: ProctorClientService = {
        submit: () => Effect.fail(new ProctorPermanentError({ reason: "no such proc", status: 400 })),
        status: (id) => Effect.fail(new ExecutionNotFound({ id })),
        listProcs: () => Effect.fail(new ProctorTransientError({ reason: "connection refused" })),
        ping: () => Effect.never
      }
      const measured = instrumentProctor(client)
      const before = {
        permanent: calls("submit", "permanent"),
        notFound: calls("status", "not_found"),
        transient: calls("metadata", "transient"),
        submitTimed: timed("submit"),
        pingTimed: timed("ping"),
        ping: calls("ping", "ok") + calls("ping", "error")
      }
      expect(Exit.isFailure(yield* Effect.exit(measured.submit({ proc: "nope", args: {} })))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(measured.status(ExecutionId.make("1234"))))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(measured.listProcs()))).toBe(true)
      const pinging = yield* Effect.fork(measured.ping())
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(pinging)

      expect(calls("submit", "permanent") - before.permanent).toBe(1)
      expect(calls("status", "not_found") - before.notFound).toBe(1)
      expect(calls("metadata", "transient") - before.transient).toBe(1)
      expect(timed("submit") - before.submitTimed).toBe(1)
      expect(timed("ping") - before.pingTimed).toBe(0)
      expect(calls("ping", "ok") + calls("ping", "error") - before.ping).toBe(0)
    }))
})
