import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, FastCheck, Fiber, Schedule, TestClock } from "effect"
import {
  classifyOtherFailure,
  classifyStatus,
  classifySubmitFailure,
  failureStates,
  formatProctorTime,
  inProgressStates,
  isTransient,
  parseProctorTime,
  ProctorPermanentError,
  ProctorTransientError
} from "../../src/proctor/Domain.js"
import { RetryPolicy, retrySchedule, retryTransient } from "../../src/proctor/Retry.js"
import { decodeExecution, decodeProcs, executionJsonText } from "../../src/proctor/V2Wire.js"
import { quoteIntegerField } from "../../src/proctor/Wire.js"

describe("execution states", () => {
  it("classifies every documented state, and keeps new ones apart", () => {
    expect(inProgressStates.map(classifyStatus)).toEqual(["in_progress", "in_progress", "in_progress", "in_progress"])
    expect(classifyStatus("FINISHED")).toBe("succeeded")
    expect(failureStates.map(classifyStatus).every((kind) => kind === "failed")).toBe(true)
    expect(failureStates).toHaveLength(6)
    expect(classifyStatus("JOB_QUEUED")).toBe("unknown")
    expect(classifyStatus("finished")).toBe("unknown")
  })
})

describe("error classification", () => {
  it("an unknown proc's 500 is permanent, other 5xx transient", () => {
    const unknown = classifySubmitFailure(500, "Failed to execute Job, Errors Detail: metadata not found for proc x")
    expect(unknown).toBeInstanceOf(ProctorPermanentError)
    expect(unknown.reason).toContain("proc x")
    expect(classifySubmitFailure(500, "Errors Detail: Metadata NOT FOUND")).toBeInstanceOf(ProctorPermanentError)
    expect(classifySubmitFailure(500, "Failed to execute Job, Errors Detail: kubernetes said no")).toBeInstanceOf(ProctorTransientError)
    expect(classifySubmitFailure(503, "")).toBeInstanceOf(ProctorTransientError)
    expect(isTransient(classifySubmitFailure(502, "bad gateway"))).toBe(true)
  })

  it("4xx are permanent except 408 and 429", () => {
    for (const status of [400, 401, 403, 404, 422]) {
      expect(classifySubmitFailure(status, "").status).toBe(status)
      expect(classifySubmitFailure(status, "")._tag).toBe("ProctorPermanentError")
    }
    expect(classifyOtherFailure(429, "slow down")._tag).toBe("ProctorTransientError")
    expect(classifyOtherFailure(408, "")._tag).toBe("ProctorTransientError")
    expect(classifyOtherFailure(401, "").reason).toContain("Access-Token")
  })

  it("long bodies are cut, so a reason stays readable", () => {
    expect(classifySubmitFailure(500, "x".repeat(5000)).reason.length).toBeLessThan(600)
  })
})

describe("64-bit ids on the wire", () => {
  const uint64 = FastCheck.bigInt({ min: 0n, max: 2n ** 64n - 1n })

  it.prop("any uint64 id survives a round trip through proctor's JSON", [uint64, FastCheck.string(), FastCheck.string()], ([id, jobName, status]) => {
    const text = executionJsonText({ id: id.toString(), jobName, name: "n", imageTag: "i", createdAt: "c", updatedAt: "u", status })
    const decoded = decodeExecution(text)
    expect(Either.isRight(decoded)).toBe(true)
    if (Either.isRight(decoded)) {
      expect(decoded.right.id).toBe(id.toString())
      expect(decoded.right.jobName).toBe(jobName)
      expect(decoded.right.status).toBe(status)
    }
  })

  it("quotes only the id key's integers, never text inside strings", () => {
    const text = `{"name":"say \\"id\\": 7166810340089565185","nested":{"id":7166810340089565187},"ids":[1,2],"id" : 7166810340089565185}`
    const parsed = JSON.parse(quoteIntegerField(text))
    expect(parsed).toEqual({
      name: `say "id": 7166810340089565185`,
      nested: { id: "7166810340089565187" },
      ids: [1, 2],
      id: "7166810340089565185"
    })
    expect(quoteIntegerField(`{"id":"already"}`)).toBe(`{"id":"already"}`)
  })

  it("rejects what is not an execution, with a reason", () => {
    const notJson = decodeExecution("<html>")
    expect(Either.isLeft(notJson) && notJson.left).toContain("not JSON")
    const negative = decodeExecution(`{"id":-5,"status":"CREATED"}`)
    expect(Either.isLeft(negative)).toBe(true)
    const tooBig = decodeExecution(`{"id":18446744073709551616,"status":"CREATED"}`)
    expect(Either.isLeft(tooBig)).toBe(true)
  })

  it("reads /metadata leniently: missing fields get defaults", () => {
    const procs = decodeProcs(`[{"name":"a"},{"name":"b","env_vars":{"args":[{"name":"VM_NAME"}]},"authorized_groups":null}]`)
    expect(Either.isRight(procs)).toBe(true)
    if (Either.isRight(procs)) {
      expect(procs.right.map((proc) => proc.name)).toEqual(["a", "b"])
      expect(procs.right[1]!.argNames).toEqual(["VM_NAME"])
      expect(procs.right[1]!.authorizedGroups).toEqual([])
    }
  })
})

describe("proctor timestamps", () => {
  it("writes and reads Go's time.Time.String() format, and RFC 3339", () => {
    const moment = Date.UTC(2024, 4, 1, 10, 0, 0, 120)
    expect(formatProctorTime(moment)).toBe("2024-05-01 10:00:00.12 +0000 UTC")
    expect(formatProctorTime(Date.UTC(2024, 4, 1))).toBe("2024-05-01 00:00:00 +0000 UTC")
    expect(parseProctorTime(formatProctorTime(moment))?.getTime()).toBe(moment)
    expect(parseProctorTime("2024-05-01 12:00:00.123456789 +0200 CEST")?.toISOString()).toBe("2024-05-01T10:00:00.123Z")
    expect(parseProctorTime("2024-05-01T10:00:00Z")?.getTime()).toBe(Date.UTC(2024, 4, 1, 10))
    expect(parseProctorTime("yesterday")).toBeUndefined()
  })
})

describe("retry policy", () => {
  it.effect("backs off exponentially with jitter, each delay capped", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ attempts: 8, backoff: "100 millis", backoffMax: "1 second" })
      const delays = Chunk.toReadonlyArray(
        yield* Schedule.run(Schedule.delays(retrySchedule(policy)), 0, Array.from({ length: 7 }, (_, index) => index))
      ).map(Duration.toMillis)
      expect(delays[0]).toBeGreaterThanOrEqual(80)
      expect(delays[0]).toBeLessThanOrEqual(120)
      expect(delays[2]).toBeGreaterThanOrEqual(320)
      expect(delays[2]).toBeLessThanOrEqual(480)
      expect(Math.max(...delays)).toBeLessThanOrEqual(1200)
      expect(delays[6]).toBeGreaterThanOrEqual(800)
    }))

  it.effect("retries transient failures for the policy's attempts, permanent ones never", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ attempts: 4, backoff: "100 millis", backoffMax: "1 second" })
      let attempts = 0
      const failing = (error: ProctorTransientError | ProctorPermanentError) => Effect.suspend(() => {
        attempts++
        return Effect.fail(error)
      })
      const fiber = yield* Effect.fork(Effect.flip(retryTransient(failing(new ProctorTransientError({ reason: "down" })), policy)))
      yield* TestClock.adjust("1 minute")
      const last = yield* Fiber.join(fiber)
      expect(last._tag).toBe("ProctorTransientError")
      expect(attempts).toBe(4)

      attempts = 0
      const permanent = yield* Effect.flip(retryTransient(failing(new ProctorPermanentError({ reason: "no", status: 400 })), policy))
      expect(permanent._tag).toBe("ProctorPermanentError")
      expect(attempts).toBe(1)
    }))

  it("refuses a policy without attempts", () => {
    expect(() => RetryPolicy.make({ attempts: 0 })).toThrow(RangeError)
  })
})
