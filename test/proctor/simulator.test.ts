import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Option, TestClock } from "effect"
import { maxBodyBytes, procsFromCatalog, start } from "../../src/proctor/Simulator.js"
import { createArgs, raw, shippedCatalog } from "./support.js"

const simulator = (options: Omit<Parameters<typeof start>[0], "procs"> = {}) =>
  Effect.gen(function* () {
    const catalog = yield* shippedCatalog
    return yield* start({ procs: procsFromCatalog(catalog), ...options }).pipe(Effect.orDie)
  })

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  raw(`${url}/execution`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } })

/** Real time, for what happens outside the TestClock (sockets). */
const realPause = (millis: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

/** Until the simulator sleeps on the TestClock: adjusting it earlier would move time before the sleep began. */
const untilSleeping = Effect.gen(function* () {
  while ((yield* TestClock.sleeps()).length === 0) yield* realPause(5)
})

const goSniffed = "text/plain; charset=utf-8"

describe("proctor simulator over HTTP", () => {
  it.scoped("answers proctor's plain-text errors word for word", () =>
    Effect.gen(function* () {
      const sim = yield* simulator()
      const notJson = yield* post(sim.url, "name=create-vm-java")
      expect(notJson).toMatchObject({ status: 400, text: "Failed to parse request body from CLI" })
      expect(notJson.contentType).toContain("text/plain")

      const wrongArgs = yield* post(sim.url, JSON.stringify({ name: "create-vm-java", args: { COUNT: 3 } }))
      expect(wrongArgs.status).toBe(400)

      const unknown = yield* post(sim.url, JSON.stringify({ name: "create-vm-cobol", args: {} }))
      expect(unknown).toMatchObject({ status: 500, text: "Failed to execute Job, Errors Detail: metadata not found for proc create-vm-cobol" })

      expect(yield* raw(`${sim.url}/execution/123abc/status`)).toMatchObject({ status: 400, text: "Failed to translate path parameter to uint64" })
      expect(yield* raw(`${sim.url}/execution/42/status`)).toMatchObject({ status: 404, text: "Execution context not Found" })
      expect(yield* raw(`${sim.url}/ping`)).toMatchObject({ status: 200, text: "pong" })
      expect((yield* raw(`${sim.url}/nowhere`)).status).toBe(404)

      const stats = yield* sim.stats
      expect(stats.submit).toMatchObject({ malformed: 2, unknownProc: 1, accepted: 0 })
      expect(stats.status).toMatchObject({ badRequest: 1, notFound: 1 })
    }))

  it.scoped("answers a body over its limit with 413 and closes that connection, and goes on answering", () =>
    Effect.gen(function* () {
      const sim = yield* simulator()
      const huge = yield* post(sim.url, JSON.stringify({ name: "create-vm-java", args: { PADDING: "x".repeat(maxBodyBytes) } }))
      expect(huge).toMatchObject({ status: 413, text: `request body larger than ${maxBodyBytes} bytes` })
      const created = yield* post(sim.url, JSON.stringify({ name: "create-vm-java", args: createArgs("after-huge") }))
      expect(created.status).toBe(201)
      expect((yield* sim.stats).submit).toMatchObject({ accepted: 1 })
    }))

  it.scoped("writes the id as a bare 64-bit integer and snake_case fields", () =>
    Effect.gen(function* () {
      const sim = yield* simulator()
      const created = yield* post(sim.url, JSON.stringify({ name: "create-vm-java", args: createArgs("raw-1"), callback_url: "http://x" }))
      expect(created.status).toBe(201)
      expect(created.text).toMatch(/^\{"id":7166810340089565185,"job_name":"create-vm-java","name":"proctor-[0-9a-f]+-\w+","image_tag":"[^"]+","created_at":"[^"]+ \+0000 UTC","updated_at":"[^"]+","status":"CREATED"\}$/)
      // What a naive client would read instead:
      expect(String((JSON.parse(created.text) as { id: number }).id)).not.toBe("7166810340089565185")
    }))

  it.scoped("with auth on, a request without both headers gets 401 and an empty body; /ping stays open", () =>
    Effect.gen(function* () {
      const sim = yield* simulator({ auth: { tokens: { "ops@example.com": "t0k3n" } } })
      const body = JSON.stringify({ name: "create-vm-java", args: createArgs("auth-1") })
      expect(yield* post(sim.url, body)).toMatchObject({ status: 401, text: "" })
      expect(yield* post(sim.url, body, { "Email-Id": "ops@example.com" })).toMatchObject({ status: 401, text: "" })
      expect(yield* post(sim.url, body, { "Access-Token": "t0k3n" })).toMatchObject({ status: 401, text: "" })
      expect((yield* raw(`${sim.url}/metadata`)).status).toBe(401)
      expect((yield* post(sim.url, body, { "Email-Id": "ops@example.com", "Access-Token": "t0k3n" })).status).toBe(201)
      expect((yield* raw(`${sim.url}/ping`)).text).toBe("pong")
      expect((yield* sim.stats).rejected.unauthorized).toBe(4)
    }))

  it.scoped("a lost answer closes the connection, and the execution is in the ledger", () =>
    Effect.gen(function* () {
      const sim = yield* simulator({ lostResponseRate: 1 })
      const answer = yield* Effect.either(Effect.tryPromise(() =>
        fetch(`${sim.url}/execution`, { method: "POST", body: JSON.stringify({ name: "create-vm-java", args: createArgs("lost-2") }) })
      ))
      expect(Either.isLeft(answer)).toBe(true)
      const ledger = yield* sim.ledger
      expect(ledger.executions.map((execution) => [execution.vmName, execution.responseLost])).toEqual([["lost-2", true]])
    }))

  it.scoped("answers any other method or path with gorilla/mux's 404; paths match exactly, as in proctor", () =>
    Effect.gen(function* () {
      const sim = yield* simulator()
      const notFound = { status: 404, contentType: goSniffed, text: "404 page not found\n" }
      for (const [method, path] of [
        ["GET", "/nowhere"],
        ["POST", "/ping"],
        ["GET", "/execution"],
        ["DELETE", "/execution"],
        ["PUT", "/__sim/ledger"],
        ["GET", "/execution/42/status/more"],
        ["GET", "/PING"],
        ["GET", "/ping/"]
      ] as const) {
        expect(yield* raw(`${sim.url}${path}`, { method })).toEqual(notFound)
      }
      // The query string is not part of the path.
      expect(yield* raw(`${sim.url}/ping?x=1`)).toEqual({ status: 200, contentType: goSniffed, text: "pong" })
      expect((yield* sim.stats).calls).toBe(1)
    }))

  it.scoped("writes proctor's answers as text/plain with a length, the simulator's own as JSON", () =>
    Effect.gen(function* () {
      const sim = yield* simulator()
      const headersOf = (url: string, init: RequestInit = {}) =>
        Effect.promise(async () => {
          const response = await fetch(url, init)
          const text = await response.text()
          return { status: response.status, type: response.headers.get("content-type"), length: response.headers.get("content-length"), bytes: Buffer.byteLength(text) }
        })
      const created = yield* headersOf(`${sim.url}/execution`, { method: "POST", body: JSON.stringify({ name: "create-vm-java", args: createArgs("type-1") }) })
      expect(created).toMatchObject({ status: 201, type: goSniffed })
      expect(Number(created.length)).toBe(created.bytes)
      expect(yield* headersOf(`${sim.url}/metadata`)).toMatchObject({ status: 200, type: goSniffed })
      expect(yield* headersOf(`${sim.url}/execution/7166810340089565185/status`)).toMatchObject({ status: 200, type: goSniffed })
      for (const path of ["/__sim/ledger", "/__sim/stats", "/__sim/config"]) {
        const answer = yield* headersOf(`${sim.url}${path}`)
        expect(answer).toMatchObject({ status: 200, type: "application/json" })
        expect(Number(answer.length)).toBe(answer.bytes)
      }
      const configured = yield* headersOf(`${sim.url}/__sim/config`, { method: "PUT", body: JSON.stringify({ seed: 9 }) })
      expect(configured).toMatchObject({ status: 200, type: "application/json" })
      expect(yield* headersOf(`${sim.url}/__sim/config`, { method: "PUT", body: "{" })).toMatchObject({ status: 400, type: goSniffed })

      const guarded = yield* simulator({ auth: { tokens: { "ops@example.com": "t0k3n" } } })
      expect(yield* raw(`${guarded.url}/metadata`)).toEqual({ status: 401, contentType: null, text: "" })
    }))

  it.scoped("serves the ledger, stats and knobs as JSON", () =>
    Effect.gen(function* () {
      const sim = yield* simulator({ durationMs: { create: 100 }, seed: 3 })
      yield* post(sim.url, JSON.stringify({ name: "create-vm-java", args: createArgs("json-1") }))
      yield* TestClock.adjust(Duration.millis(100))
      const ledger = JSON.parse((yield* raw(`${sim.url}/__sim/ledger`)).text)
      expect(ledger.vms).toEqual([expect.objectContaining({ name: "json-1", createdAt: 100, createSubmissions: 1 })])
      expect(ledger.executions[0]).toMatchObject({ submittedAt: 0, finishedAt: 100, status: "FINISHED", effect: "created" })
      const stats = JSON.parse((yield* raw(`${sim.url}/__sim/stats`)).text)
      expect(stats).toMatchObject({ calls: 1, submit: { accepted: 1 } })
      const knobs = JSON.parse((yield* raw(`${sim.url}/__sim/config`)).text)
      expect(knobs).toMatchObject({ seed: 3, durationMs: { create: 100 } })
    }))

  it.scopedLive("delays every proctor answer by the configured latency, changeable at run time", () =>
    Effect.gen(function* () {
      const sim = yield* simulator()
      const timed = Effect.gen(function* () {
        const started = Date.now()
        yield* raw(`${sim.url}/ping`)
        return Date.now() - started
      })
      yield* sim.configure({ responseLatencyMs: 150 })
      expect(yield* timed).toBeGreaterThanOrEqual(140)
      yield* sim.configure({ responseLatencyMs: 0 })
      expect(yield* timed).toBeLessThan(140)
    }))

  it.scoped("waits out the latency on the simulator's clock", () =>
    Effect.gen(function* () {
      const sim = yield* simulator({ responseLatencyMs: 5_000 })
      const answer = yield* Effect.fork(raw(`${sim.url}/ping`))
      yield* untilSleeping
      yield* TestClock.adjust(Duration.millis(4_999))
      yield* realPause(50)
      expect(yield* Fiber.poll(answer)).toEqual(Option.none())
      expect((yield* sim.stats)).toMatchObject({ calls: 1, ping: 0 })
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.join(answer)).toEqual({ status: 200, contentType: goSniffed, text: "pong" })
    }))

  it.scoped("closing drops in-flight calls at once, their latency sleeps interrupted", () =>
    Effect.gen(function* () {
      const sim = yield* simulator({ responseLatencyMs: 60_000 })
      const answer = yield* Effect.fork(Effect.either(Effect.tryPromise(() => fetch(`${sim.url}/ping`))))
      yield* untilSleeping
      // Would wait for the minute of TestClock time that never passes if the call held the server open.
      yield* sim.close
      expect(Either.isLeft(yield* Fiber.join(answer))).toBe(true)
      // A sleep left running would answer the ping (and count it) once the minute has passed.
      yield* TestClock.adjust(Duration.minutes(1))
      yield* realPause(50)
      expect(yield* sim.stats).toMatchObject({ calls: 1, ping: 0 })
    }))

  it.scoped("fails with a ServeError when it cannot listen", () =>
    Effect.gen(function* () {
      const first = yield* simulator()
      const catalog = yield* shippedCatalog
      const error = yield* Effect.flip(start({ procs: procsFromCatalog(catalog), port: first.port }))
      expect(error._tag).toBe("ServeError")
    }))

  it.scoped("refuses bad knobs at start", () =>
    Effect.gen(function* () {
      const catalog = yield* shippedCatalog
      const error = yield* Effect.flip(start({ procs: procsFromCatalog(catalog), failureRate: 1.5 }))
      expect(error._tag).toBe("InvalidInput")
    }))

  it.effect("builds exactly the catalog's procs, each with its kind", () =>
    Effect.gen(function* () {
      const catalog = yield* shippedCatalog
      const procs = procsFromCatalog(catalog)
      expect(procs.map((proc) => proc.name).sort()).toEqual([...catalog.procNames].sort())
      expect(procs.find((proc) => proc.name === "decommission-vm")?.kind).toBe("destroy")
      expect(procs.find((proc) => proc.name === "check-vm-health")?.kind).toBe("check")
      expect(procs.filter((proc) => proc.kind === "create")).toHaveLength(catalog.spec.procs.create.length)
    }))
})
