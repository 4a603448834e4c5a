/**
 * A real `fleet serve` in a child process (`node bin/fleet.js serve`), for tests that must kill
 * it (SIGKILL) or run it exactly as a user would (the embedded default). Its JSON log lines are
 * collected as they come; it is ready when it logs `Listening on http://…`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, openSync, readSync } from "node:fs"
import { createServer } from "node:net"
import { Deferred, Duration, Effect, Exit, Layer, Redacted, type Scope } from "effect"
import { Tokens } from "../../src/auth/Tokens.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { repoRoot, testPoliciesPath } from "../support/Paths.js"
import { testBundle } from "../support/TestBundle.js"

export { repoRoot }

/** A free TCP port on the loopback interface (fleet's PORT must be 1–65535, so 0 is not an option). */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.unref()
  server.once("error", (error) => resume(Effect.die(error)))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The parent's environment without anything that would steer fleet (its own settings, the test database). */
const cleanEnvironment = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue
    if (/^(DATABASE_URL|DATABASE_POOL_SIZE|TEST_DATABASE_URL|PROCTOR_.*|FLEET_.*|PORT|LOG_.*|NODE_OPTIONS|VITEST.*)$/.test(key)) continue
    env[key] = value
  }
  return env
}

export interface LogLine {
  readonly level?: number
  readonly msg?: string
  readonly [key: string]: unknown
}

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ControllerProcess {
  readonly pid: number
  readonly baseUrl: string
  /** Every line written so far, parsed when it is JSON. */
  readonly logs: ReadonlyArray<LogLine>
  /** stdout and stderr so far, for failure messages. */
  readonly output: () => string
  /** Sends SIGKILL now (synchronously, so it can be called from inside a callback). */
  readonly killNow: () => void
  /** Sends a signal and waits until the process has exited. */
  readonly stop: (signal: NodeJS.Signals) => Effect.Effect<Exited>
  /** Completes when the process has exited (for whatever reason). */
  readonly exited: Effect.Effect<Exited>
}

export interface SpawnOptions {
  /** Added to a clean copy of the parent's environment; PORT is chosen here unless given. */
  readonly env: Record<string, string>
  /** How long to wait for `Listening on` (default 60 seconds: tsx, for `entry: "sources"`, compiles them on a cold cache). */
  readonly startTimeout?: Duration.DurationInput
  readonly args?: ReadonlyArray<string>
  /**
   * What to run: the sources as bundled for this test run (the default: test/support/TestBundle.ts,
   * the code as it is, started in a second), the TypeScript sources through tsx (`bin/fleet.js`,
   * as `npm start` runs them), or the production bundle (`dist/fleet.mjs`, from `npm run build`:
   * what the Docker image runs — for benchmarks).
   */
  readonly entry?: "test-bundle" | "sources" | "bundle"
  /** The bundle to run when `entry` is "bundle" (default dist/fleet.mjs), relative to the repository's root. */
  readonly bundle?: string
  /** Flags for node itself (e.g. --cpu-prof), before the entry point. */
  readonly nodeArgs?: ReadonlyArray<string>
  /**
   * Write stdout to this file (read back from it) instead of a pipe, so that the child never waits
   * for this process to read its logs (pino writes synchronously): for benchmarks.
   */
  readonly stdoutFile?: string
}

const tail = (text: string, lines = 40) => text.split("\n").slice(-lines).join("\n")

/**
 * Starts `fleet serve` (see `entry`) and waits for its `Listening on` line (or, when the log level
 * hides it, for `/readyz` to answer 200 on its port). The scope kills it
 * (SIGKILL) if it is still running when the scope closes.
 */
export const spawnController = (options: SpawnOptions): Effect.Effect<ControllerProcess, never, Scope.Scope> =>
  spawnOnce(options).pipe(
    // The free port was found before the child bound it: someone may have taken it in between.
    Effect.retry({ times: 3, while: () => options.env["PORT"] === undefined }),
    Effect.catchAll((failure) => Effect.dieMessage(failure.message))
  )

class PortTaken {
  readonly _tag = "PortTaken"
  constructor(readonly message: string) {}
}

const spawnOnce = (options: SpawnOptions): Effect.Effect<ControllerProcess, PortTaken, Scope.Scope> =>
  Effect.gen(function* () {
    const port = options.env["PORT"] ?? String(yield* freePort)
    const env = { ...cleanEnvironment(), LOG_FORMAT: "json", FLEET_DEPRECATIONS: testPoliciesPath, ...options.env, PORT: port }
    const logs: Array<LogLine> = []
    const chunks: Array<string> = []
    const listening = yield* Deferred.make<string, string>()
    const exit = yield* Deferred.make<Exited>()

    let pending = ""
    const consume = (chunk: string) => {
      chunks.push(chunk)
      pending += chunk
      const lines = pending.split("\n")
      pending = lines.pop() ?? ""
      for (const line of lines) {
        if (line.trim() === "") continue
        let parsed: LogLine
        try {
          parsed = JSON.parse(line) as LogLine
        } catch {
          parsed = { msg: line }
        }
        logs.push(parsed)
        const match = /^Listening on (http:\/\/\S+)/.exec(parsed.msg ?? "")
        if (match) Deferred.unsafeDone(listening, Exit.succeed(match[1]!))
      }
    }

    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const stdoutFd = options.stdoutFile === undefined ? undefined : openSync(options.stdoutFile, "w")
        const entry = options.entry === "bundle" ? (options.bundle ?? "dist/fleet.mjs") : options.entry === "sources" ? "bin/fleet.js" : testBundle
        const child = spawn(process.execPath, [...(options.nodeArgs ?? []), entry, ...(options.args ?? ["serve"])], {
          cwd: repoRoot,
          env,
          stdio: ["ignore", stdoutFd ?? "pipe", "pipe"]
        })
        let tail: ReturnType<typeof setInterval> | undefined
        if (stdoutFd === undefined) {
          child.stdout!.setEncoding("utf8")
          child.stdout!.on("data", consume)
        } else {
          closeSync(stdoutFd)
          const reader = openSync(options.stdoutFile!, "r")
          const buffer = Buffer.alloc(1 << 16)
          const drain = () => {
            for (let read = readSync(reader, buffer); read > 0; read = readSync(reader, buffer)) {
              consume(buffer.toString("utf8", 0, read))
            }
          }
          tail = setInterval(drain, 50)
          child.once("exit", () => {
            clearInterval(tail)
            drain()
            closeSync(reader)
          })
        }
        child.stderr!.setEncoding("utf8")
        child.stderr!.on("data", (chunk: string) => chunks.push(chunk))
        child.once("exit", (code, signal) => {
          Deferred.unsafeDone(exit, Exit.succeed({ code, signal }))
          Deferred.unsafeDone(listening, Exit.fail(`fleet serve exited (code ${code}, signal ${signal}) before listening`))
        })
        child.once("error", (error) => Deferred.unsafeDone(listening, Exit.fail(`could not start fleet serve: ${error.message}`)))
        return child
      }),
      (child) =>
        child.exitCode === null && child.signalCode === null
          ? Effect.sync(() => child.kill("SIGKILL")).pipe(Effect.zipRight(Deferred.await(exit)), Effect.timeout("10 seconds"), Effect.ignore)
          : Effect.void
    )

    const output = () => chunks.join("")
    // `Listening on` is an info line; below that level, readiness is the signal.
    const ready = Effect.gen(function* () {
      while (true) {
        yield* Effect.sleep("100 millis")
        const answer = yield* Effect.tryPromise(() => fetch(`http://127.0.0.1:${port}/readyz`)).pipe(Effect.option)
        if (answer._tag === "Some" && answer.value.ok) return `http://127.0.0.1:${port}`
      }
    })
    const listeningUrl = yield* Effect.raceFirst(Deferred.await(listening), ready).pipe(
      Effect.timeoutFail({
        duration: options.startTimeout ?? "60 seconds",
        onTimeout: () => `fleet serve did not log "Listening on" within ${Duration.format(Duration.decode(options.startTimeout ?? "60 seconds"))}`
      }),
      Effect.catchAll((reason) => {
        const message = `${reason}\n--- its output ---\n${tail(output())}`
        return output().includes("EADDRINUSE") ? Effect.fail(new PortTaken(message)) : Effect.dieMessage(message)
      })
    )
    // It listens on FLEET_HOST (0.0.0.0 in a container); the test always talks to it over loopback.
    const baseUrl = listeningUrl.replace("0.0.0.0", "127.0.0.1")

    return {
      pid: child.pid!,
      baseUrl,
      logs,
      output,
      killNow: () => {
        child.kill("SIGKILL")
      },
      stop: (signal) => Effect.sync(() => child.kill(signal)).pipe(Effect.zipRight(Deferred.await(exit))),
      exited: Deferred.await(exit)
    } satisfies ControllerProcess
  })

/** JSON over HTTP with the global fetch (with a bearer token when given); the body parsed when there is one. */
export const httpJson = (url: string, init: { readonly method?: string; readonly body?: unknown; readonly token?: string | undefined } = {}) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = {}
    if (init.body !== undefined) headers["content-type"] = "application/json"
    if (init.token !== undefined) headers["authorization"] = `Bearer ${init.token}`
    const response = await fetch(url, {
      method: init.method ?? "GET",
      headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) })
    })
    const text = await response.text()
    return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as unknown }
  })

/** Makes an admin API token directly in a (migrated) database, as `fleet tokens create` would; its secret. */
export const adminToken = (databaseUrl: string, name = "test-admin"): Effect.Effect<string> =>
  Effect.gen(function* () {
    const tokens = yield* Tokens
    const { secret } = yield* tokens.create({ name, ownerEmail: "admin@example.com", scopes: ["admin"] }, "test@example.com")
    return Redacted.value(secret)
  }).pipe(Effect.provide(Tokens.Default.pipe(Layer.provide(layerFromUrl(Redacted.make(databaseUrl), 1)))), Effect.scoped, Effect.orDie)

/** The admin token an embedded-mode controller has printed so far (on stderr, never in its logs), if any. */
export const printedDemoToken = (controller: ControllerProcess): string | undefined =>
  [...controller.output().matchAll(/export FLEET_TOKEN=(\S+)/g)].at(-1)?.[1]

/**
 * The token to call an embedded-mode controller with: none when its API answers without one;
 * otherwise the admin token it prints at start (which may come a moment after `Listening on`).
 */
export const demoToken = (controller: ControllerProcess): Effect.Effect<string | undefined> =>
  Effect.gen(function* () {
    const probe = yield* httpJson(`${controller.baseUrl}/v1/vms?limit=1`)
    if (probe.status !== 401) return undefined
    for (let waited = 0; waited < 15_000; waited += 50) {
      const token = printedDemoToken(controller)
      if (token !== undefined) return token
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.dieMessage(`the API wants a token, and the embedded controller printed none:\n${controller.output()}`)
  })
