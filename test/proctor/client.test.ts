import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Duration, Effect, Exit, Layer, Option, Redacted, TestClock } from "effect"
import { classifyStatus, ExecutionId, ProctorPermanentError, ProctorTransientError } from "../../src/proctor/Domain.js"
import { RetryPolicy, retryTransient } from "../../src/proctor/Retry.js"
import { ProctorClient, type ProctorClientOptions, ProctorConfig } from "../../src/proctor/ProctorClient.js"
import { clientFor, createArgs, raw, shippedCatalog, simulatorWithClient } from "./support.js"

const create = (vmName: string) => ({ proc: "create-vm-java", args: createArgs(vmName) })
const simulatorClient = (url: string, options: Omit<ProctorClientOptions, "url">) => clientFor({ url, ...options })
const destroy = (vmName: string) => ({ proc: "decommission-vm", args: { VM_NAME: vmName, APPLICATION: "payments", ENVIRONMENT: "staging" } })

describe("ProctorClient against the simulator", () => {
  it.scoped("submits, then polls through the states to FINISHED as simulated time passes", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ durationMs: { create: 3000 } })
      const submitted = yield* proctor.submit(create("pay-stg-u2204-0001"))
      expect(submitted.status).toBe("CREATED")
      expect(submitted.jobName).toBe("create-vm-java")

      const seen: Array<string> = []
      for (const step of [0, 1000, 1000, 999, 1]) {
        yield* TestClock.adjust(Duration.millis(step))
        seen.push((yield* proctor.status(submitted.id)).status)
      }
      expect(seen).toEqual(["CREATED", "JOB_READY", "POD_READY", "POD_READY", "FINISHED"])
      expect(classifyStatus(seen.at(-1)!)).toBe("succeeded")

      const ledger = yield* sim.ledger
      expect(ledger.vms).toHaveLength(1)
      expect(ledger.vms[0]).toMatchObject({ name: "pay-stg-u2204-0001", createdBy: submitted.id, destroyedAt: null })
      expect(ledger.vms[0]!.createdAt - ledger.executions[0]!.submittedAt).toBe(3000)
    }))

  it.scoped("keeps 64-bit ids exact, beyond what a JS number can hold", () =>
    Effect.gen(function* () {
      const { proctor } = yield* simulatorWithClient()
      const first = yield* proctor.submit(create("a"))
      const second = yield* proctor.submit(create("b"))
      expect(BigInt(first.id)).toBeGreaterThan(2n ** 53n)
      // A float would have changed the id, and made both ids equal.
      expect(String(BigInt(Number(first.id)))).not.toBe(first.id)
      expect(Number(first.id)).toBe(Number(second.id))
      expect(BigInt(second.id) - BigInt(first.id)).toBe(1n)
      expect((yield* proctor.status(second.id)).id).toBe(second.id)
    }))

  it.scoped("an unknown proc is a permanent error that says why", () =>
    Effect.gen(function* () {
      const { proctor } = yield* simulatorWithClient()
      const error = yield* Effect.flip(proctor.submit({ proc: "create-vm-cobol", args: createArgs("x") }))
      expect(error).toBeInstanceOf(ProctorPermanentError)
      expect(error.status).toBe(500)
      expect(error.reason).toContain("metadata not found for proc create-vm-cobol")
    }))

  it.scoped("a simulated 500 is transient and creates nothing", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ failureRate: 1 })
      const error = yield* Effect.flip(proctor.submit(create("x")))
      expect(error._tag).toBe("ProctorTransientError")
      expect(error.status).toBe(500)
      expect((yield* sim.ledger).executions).toEqual([])
    }))

  it.scopedLive("retryTransient repeats transient failures up to the attempt limit, and never a permanent one", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ failureRate: 1 })
      const policy = RetryPolicy.make({ attempts: 3, backoff: "1 millis", backoffMax: "5 millis" })

      const exhausted = yield* Effect.flip(retryTransient(proctor.submit(create("x")), policy))
      expect(exhausted).toBeInstanceOf(ProctorTransientError)
      expect((yield* sim.stats).submit.failed).toBe(3)

      const permanent = yield* Effect.flip(proctor.submit({ proc: "nope", args: {} }).pipe(retryTransient(policy)))
      expect(permanent).toBeInstanceOf(ProctorPermanentError)
      expect((yield* sim.stats).submit.unknownProc).toBe(1)

      // Proctor recovers after two failures: the third attempt succeeds.
      let failures = 0
      const recovering = proctor.submit(create("y")).pipe(
        Effect.tapError(() => ++failures === 2 ? sim.configure({ failureRate: 0 }) : Effect.void)
      )
      const accepted = yield* retryTransient(recovering, policy)
      expect(accepted.status).toBe("CREATED")
      const stats = yield* sim.stats
      expect(stats.submit.failed).toBe(5)
      expect(stats.submit.accepted).toBe(1)
    }), 10_000)

  it.scoped("with auth on, a missing token is a 401 whose error never shows the token", () =>
    Effect.gen(function* () {
      const secret = "s3cret-token-value"
      const { sim } = yield* simulatorWithClient({ auth: { tokens: { "ops@example.com": secret } } })
      const anonymous = yield* simulatorClient(sim.url, {})
      const missing = yield* Effect.flip(anonymous.submit(create("x")))
      expect(missing).toBeInstanceOf(ProctorPermanentError)
      expect(missing.status).toBe(401)
      expect(missing.reason).toContain("Access-Token")

      const wrong = yield* simulatorClient(sim.url, { email: "ops@example.com", accessToken: Redacted.make(`${secret}-wrong`) })
      const exit = yield* Effect.exit(wrong.submit(create("x")))
      expect(Exit.isFailure(exit)).toBe(true)
      const rendered = [
        Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "",
        JSON.stringify(exit),
        String(exit)
      ].join("\n")
      expect(rendered).toContain("401")
      expect(rendered).not.toContain(secret)

      const right = yield* simulatorClient(sim.url, { email: "ops@example.com", accessToken: Redacted.make(secret) })
      expect((yield* right.submit(create("x"))).status).toBe("CREATED")
      expect((yield* sim.stats).rejected.unauthorized).toBe(2)
    }))

  it.scoped("a proc limited to some users answers 403 to the others", () =>
    Effect.gen(function* () {
      const { sim } = yield* simulatorWithClient({
        auth: { tokens: { "ops@example.com": "a", "dev@example.com": "b" } },
        procs: [{ name: "create-vm-java", kind: "create", authorizedEmails: ["ops@example.com"] }]
      })
      const dev = yield* simulatorClient(sim.url, { email: "dev@example.com", accessToken: Redacted.make("b") })
      const forbidden = yield* Effect.flip(dev.submit(create("x")))
      expect(forbidden.status).toBe(403)
      const ops = yield* simulatorClient(sim.url, { email: "ops@example.com", accessToken: Redacted.make("a") })
      expect((yield* ops.submit(create("x"))).jobName).toBe("create-vm-java")
    }))

  it.scoped("an outdated Client-Version is a permanent 400 with proctor's message", () =>
    Effect.gen(function* () {
      const { proctor } = yield* simulatorWithClient({ minClientVersion: "2.1.0" }, { clientVersion: "2.0.9" })
      const error = yield* Effect.flip(proctor.listProcs())
      expect(error.status).toBe(400)
      expect(error.reason).toContain("outdated version: 2.0.9")
    }))

  it.scoped("a stuck execution stays CREATED however long one waits, and creates nothing", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ stuckRate: 1 })
      const submitted = yield* proctor.submit(create("stuck-1"))
      yield* TestClock.adjust(Duration.hours(6))
      expect((yield* proctor.status(submitted.id)).status).toBe("CREATED")
      const ledger = yield* sim.ledger
      expect(ledger.executions[0]).toMatchObject({ id: submitted.id, stuck: true, finishedAt: null, status: "CREATED" })
      expect(ledger.vms).toEqual([])
    }))

  it.scoped("an execution that fails ends in a failure state and creates nothing", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ executionFailureRate: 1, durationMs: { create: 100 } })
      const submitted = yield* proctor.submit(create("fails-1"))
      yield* TestClock.adjust(Duration.millis(100))
      const status = (yield* proctor.status(submitted.id)).status
      expect(classifyStatus(status)).toBe("failed")
      expect((yield* sim.ledger).vms).toEqual([])
    }))

  it.scoped("a lost answer is a transient error, yet the execution exists and its VM gets created", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ lostResponseRate: 1, durationMs: { create: 500 } })
      const error = yield* Effect.flip(proctor.submit(create("lost-1")))
      expect(error).toBeInstanceOf(ProctorTransientError)
      const before = yield* sim.ledger
      expect(before.executions).toHaveLength(1)
      expect(before.executions[0]).toMatchObject({ vmName: "lost-1", responseLost: true, finishedAt: null })
      expect((yield* sim.stats).submit.lost).toBe(1)

      yield* TestClock.adjust(Duration.millis(500))
      const after = yield* sim.ledger
      expect(after.vms.map((vm) => vm.name)).toEqual(["lost-1"])
      // The caller can still follow it, once it learns the id by other means.
      expect((yield* proctor.status(ExecutionId.make(before.executions[0]!.id))).status).toBe("FINISHED")
    }))

  it.scoped("two creates of one VM_NAME make one VM; a destroy is recorded after the creation", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient({ durationMs: { create: 1000, destroy: 400 } })
      const first = yield* proctor.submit(create("twice-1"))
      yield* TestClock.adjust(Duration.millis(200))
      const second = yield* proctor.submit(create("twice-1"))
      yield* TestClock.adjust(Duration.millis(1000))
      expect((yield* proctor.status(first.id)).status).toBe("FINISHED")
      expect((yield* proctor.status(second.id)).status).toBe("FINISHED")

      const afterCreate = yield* sim.ledger
      expect(afterCreate.vms).toHaveLength(1)
      expect(afterCreate.vms[0]).toMatchObject({ name: "twice-1", createSubmissions: 2, createdBy: first.id })
      expect(afterCreate.executions.map((execution) => execution.effect)).toEqual(["created", "none"])

      const removal = yield* proctor.submit(destroy("twice-1"))
      yield* TestClock.adjust(Duration.millis(400))
      expect((yield* proctor.status(removal.id)).status).toBe("FINISHED")
      // Destroying it again (a retried decommission) finishes and changes nothing.
      const again = yield* proctor.submit(destroy("twice-1"))
      yield* TestClock.adjust(Duration.millis(400))
      expect((yield* proctor.status(again.id)).status).toBe("FINISHED")

      const ledger = yield* sim.ledger
      expect(ledger.vms).toHaveLength(1)
      const vm = ledger.vms[0]!
      expect(vm.destroyedBy).toBe(removal.id)
      expect(vm.destroyedAt).not.toBeNull()
      expect(vm.destroyedAt!).toBeGreaterThan(vm.createdAt)
      expect(ledger.executions.find((execution) => execution.id === again.id)?.effect).toBe("none")
    }))

  it.scoped("PUT /__sim/config changes the behaviour of the running simulator", () =>
    Effect.gen(function* () {
      const { sim, proctor } = yield* simulatorWithClient()
      const put = (body: unknown) =>
        raw(`${sim.url}/__sim/config`, { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } })

      const changed = yield* put({ failureRate: 1, durationMs: { create: 10 } })
      expect(changed.status).toBe(200)
      expect(JSON.parse(changed.text)).toMatchObject({ failureRate: 1, durationMs: { create: 10, destroy: 2000 } })
      expect((yield* Effect.flip(proctor.submit(create("x"))))._tag).toBe("ProctorTransientError")

      yield* put({ failureRate: 0 })
      const accepted = yield* proctor.submit(create("x"))
      yield* TestClock.adjust(Duration.millis(10))
      expect((yield* proctor.status(accepted.id)).status).toBe("FINISHED")

      const rejected = yield* put({ failureRate: 3 })
      expect(rejected.status).toBe(400)
      expect(rejected.text).toContain("failureRate")
      expect((yield* sim.knobs).failureRate).toBe(0)
    }))

  it.scoped("GET /metadata lists exactly the catalog's procs, with the args fleet sends", () =>
    Effect.gen(function* () {
      const catalog = yield* shippedCatalog
      const { proctor } = yield* simulatorWithClient()
      const procs = yield* proctor.listProcs()
      expect(procs.map((proc) => proc.name).sort()).toEqual([...catalog.procNames].sort())
      const java = procs.find((proc) => proc.name === "create-vm-java")!
      expect(java.argNames).toEqual(expect.arrayContaining(["VM_NAME", "OS_VERSION", "JDK_VERSION"]))
      expect(procs.find((proc) => proc.name === "decommission-vm")!.argNames).toContain("VM_NAME")
    }))

  it.scoped("an unknown execution id is ExecutionNotFound; ping answers", () =>
    Effect.gen(function* () {
      const { proctor } = yield* simulatorWithClient()
      const error = yield* Effect.flip(proctor.status(ExecutionId.make("7166810340089565184")))
      expect(error._tag).toBe("ExecutionNotFound")
      expect(error.message).toContain("7166810340089565184")
      yield* proctor.ping()
    }))

  it.scopedLive("a proctor slower than the client's timeout is a transient error", () =>
    Effect.gen(function* () {
      const { proctor } = yield* simulatorWithClient({ responseLatencyMs: 2000 }, { timeout: "50 millis" })
      const error = yield* Effect.flip(proctor.ping())
      expect(error).toBeInstanceOf(ProctorTransientError)
      expect(error.reason).toContain("no answer within")
    }))

  it.scopedLive("an unreachable proctor is a transient error", () =>
    Effect.gen(function* () {
      const { sim } = yield* simulatorWithClient()
      yield* sim.close
      const proctor = yield* simulatorClient(sim.url, {})
      const error = yield* Effect.flip(proctor.submit(create("x")))
      expect(error).toBeInstanceOf(ProctorTransientError)
      expect(error.reason).toContain("POST /execution")
    }))
})


describe("ProctorClient configuration", () => {
  it.effect("reads PROCTOR_* with defaults, keeping the token redacted", () =>
    Effect.gen(function* () {
      const settings = yield* ProctorConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
          ["PROCTOR_URL", "http://proctor.internal:8080"],
          ["PROCTOR_ACCESS_TOKEN", "hunter2"]
        ])))
      )
      expect(settings.url).toBe("http://proctor.internal:8080")
      expect(settings.email).toBe("fleet@localhost")
      expect(Duration.toMillis(settings.timeout)).toBe(10_000)
      expect(Option.isNone(settings.clientVersion)).toBe(true)
      expect(JSON.stringify(settings)).not.toContain("hunter2")
      expect(Option.map(settings.accessToken, Redacted.value)).toEqual(Option.some("hunter2"))

      const invalid = yield* Effect.flip(ProctorConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PROCTOR_URL", "proctor"], ["PROCTOR_TIMEOUT", "2 seconds"]])))
      ))
      expect(String(invalid)).toContain("PROCTOR_URL")
    }))

  it.effect("reads the retry policy from FLEET_SUBMIT_*", () =>
    Effect.gen(function* () {
      const defaults = yield* RetryPolicy.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      expect(defaults.attempts).toBe(5)
      expect(Duration.toMillis(defaults.backoff)).toBe(200)
      expect(Duration.toMillis(defaults.backoffMax)).toBe(5000)
      const custom = yield* RetryPolicy.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["FLEET_SUBMIT_ATTEMPTS", "2"], ["FLEET_SUBMIT_BACKOFF", "1 second"]])))
      )
      expect([custom.attempts, Duration.toMillis(custom.backoff)]).toEqual([2, 1000])
      const zero = yield* Effect.flip(RetryPolicy.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["FLEET_SUBMIT_ATTEMPTS", "0"]])))
      ))
      expect(String(zero)).toContain("FLEET_SUBMIT_ATTEMPTS")
    }))

  it.scoped("layerConfig builds a working client from PROCTOR_URL", () =>
    Effect.gen(function* () {
      const { sim } = yield* simulatorWithClient()
      const context = yield* Layer.build(ProctorClient.layerConfig).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PROCTOR_URL", sim.url], ["PROCTOR_EMAIL", "ops@example.com"]])))
      )
      const proctor = Context.get(context, ProctorClient)
      yield* proctor.submit(create("from-config"))
      expect((yield* sim.ledger).executions[0]?.emailId).toBe("ops@example.com")
    }))
})
