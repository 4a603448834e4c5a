import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { ConfigProvider, type Context, Effect, Layer, type LogLevel, Option, Redacted, type Scope } from "effect"
import { AuthLive } from "../../src/auth/Authentication.js"
import { Tokens } from "../../src/auth/Tokens.js"
import { Catalog } from "../../src/catalog/Catalog.js"
import { FleetClient } from "../../src/client/Client.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { createFleetServer, ServeApi } from "../../src/http/Server.js"
import { layerWith, makePino } from "../../src/logging/Logger.js"
import { ProctorClient } from "../../src/proctor/ProctorClient.js"
import { ProctorSimulator, type SimulatorHandle, type SimulatorOptions } from "../../src/proctor/Simulator.js"
import { ReconcilerLoop } from "../../src/vms/Reconciler.js"
import { ServicesLive } from "../../src/main.js"
import { ExecutorLoop } from "../../src/executor/Executor.js"
import { freshDatabase } from "./Database.js"
import { testPoliciesPath } from "./Paths.js"
import { Writable } from "node:stream"

/** Fast defaults for tests: quick polls, short leases; each test may override. */
export const testSettings: Record<string, string> = {
  FLEET_DEPRECATIONS: testPoliciesPath,
  FLEET_POLL_INITIAL: "20 millis",
  FLEET_POLL_MAX: "200 millis",
  FLEET_RECONCILE_INTERVAL: "50 millis",
  FLEET_EXECUTION_DEADLINE: "30 seconds",
  FLEET_LEASE: "5 seconds",
  FLEET_SUBMIT_BACKOFF: "10 millis",
  FLEET_SUBMIT_BACKOFF_MAX: "50 millis",
  FLEET_RESUBMIT_DELAY: "100 millis",
  PROCTOR_TIMEOUT: "2 seconds",
  // Generous, so that polling tests never meet the per-token rate limit (test/api covers it).
  FLEET_RATE_LIMIT: "1000",
  FLEET_RATE_BURST: "2000",
  // Revocations take effect at once (test/api/tokens.test.ts covers the cache).
  FLEET_TOKEN_CACHE_TTL: "0 millis"
}

/** What a test token may do (see `TestFleet.createToken`). */
export interface TestTokenSpec {
  readonly name: string
  readonly ownerEmail?: string
  readonly scopes: ReadonlyArray<string>
  readonly applications?: ReadonlyArray<string>
}

/** Every log line a test fleet wrote, as parsed JSON. */
export class CapturedLogs {
  readonly lines: Array<string> = []
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      this.lines.push(...chunk.toString("utf8").split("\n").filter((line) => line !== ""))
      done()
    }
  })
  get text(): string {
    return this.lines.join("\n")
  }
}

export interface TestFleet {
  readonly baseUrl: string
  readonly client: Effect.Effect.Success<ReturnType<typeof FleetClient.make>>
  readonly simulator: SimulatorHandle
  readonly databaseUrl: string
  readonly logs: CapturedLogs
  /** An admin API token (owner admin@example.com); `client` sends it. */
  readonly token: string
  /** Makes another API token and returns its secret. */
  readonly createToken: (spec: TestTokenSpec) => Effect.Effect<string>
  /** Runs an effect with the fleet's services (Runs, VmRequests, the SqlClient, ...). */
  readonly use: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E>
}

/**
 * A whole fleet controller for a test: a fresh database, the proctor simulator, the API on a
 * real socket (port 0) and the reconciler loop, all for as long as the scope lasts.
 */
export const startFleet = (options: {
  readonly simulator?: Partial<SimulatorOptions>
  readonly settings?: Record<string, string>
  readonly reconcile?: boolean
  /** Procs the simulator should not know, as if proctor lacked them. */
  readonly withoutProcs?: ReadonlyArray<string>
  /** A catalog without its (optional) readiness proc: with no bake time, steps swap as their replacement is ready. */
  readonly withoutReadinessProc?: boolean
  /** Proctor's Access-Token: the simulator requires it (for these users) and the client sends it. */
  readonly proctorAuth?: { readonly accessToken: string; readonly users: ReadonlyArray<string> }
  /** The minimum level of captured log lines (Info unless set). */
  readonly logLevel?: LogLevel.LogLevel
  /** Connections of the fleet's database pool (5 unless set). */
  readonly poolSize?: number
  /** A database (from `freshDatabase`) that outlives this fleet; a fresh one for the fleet's scope unless set. */
  readonly databaseUrl?: string
} = {}): Effect.Effect<TestFleet, never, Scope.Scope> =>
  Effect.gen(function* () {
    const url = options.databaseUrl ?? (yield* freshDatabase).url
    const logs = new CapturedLogs()
    const settings = new Map(Object.entries({ ...testSettings, ...options.settings }))
    const shipped = yield* Effect.provide(Catalog, Catalog.layer.pipe(Layer.provide(NodeContext.layer))).pipe(Effect.orDie)
    const catalog = options.withoutReadinessProc === true ? { ...shipped, readinessProc: Option.none() } : shipped
    const simulator = yield* ProctorSimulator.start({
      procs: ProctorSimulator.procsFromCatalog(catalog).filter((proc) => !options.withoutProcs?.includes(proc.name)),
      durationMs: { create: 30, destroy: 20, check: 10 },
      ...(options.proctorAuth === undefined
        ? {}
        : { auth: { tokens: Object.fromEntries(options.proctorAuth.users.map((user) => [user, options.proctorAuth!.accessToken])) } }),
      ...options.simulator
    }).pipe(Effect.orDie)
    const services = ServicesLive.pipe(
      Layer.provideMerge(Layer.mergeAll(
        Layer.succeed(Catalog, catalog),
        ProctorClient.layerFrom({
          url: simulator.url,
          ...(options.proctorAuth === undefined ? {} : { accessToken: Redacted.make(options.proctorAuth.accessToken) })
        }),
        layerFromUrl(Redacted.make(url), options.poolSize ?? 5)
      ))
    )
    const app = Layer.mergeAll(
      ServeApi.pipe(Layer.provideMerge(NodeHttpServer.layer(createFleetServer, { host: "127.0.0.1", port: 0 }))),
      options.reconcile === false ? Layer.empty : Layer.merge(ReconcilerLoop, ExecutorLoop)
    ).pipe(
      Layer.provide(AuthLive),
      Layer.provideMerge(services),
      Layer.provide(NodeContext.layer),
      Layer.provide(layerWith(makePino({ format: "json", destination: logs.stream }), options.logLevel)),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(settings)))
    )
    const context = yield* Layer.build(app).pipe(Effect.orDie)
    const baseUrl = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address)).pipe(Effect.provide(context))
    const createToken = (spec: TestTokenSpec) =>
      Effect.gen(function* () {
        const tokens = yield* Tokens
        const { secret } = yield* tokens.create({ ownerEmail: `${spec.name}@example.com`, ...spec }, "test@example.com")
        return Redacted.value(secret)
      }).pipe(Effect.provide(Tokens.Default.pipe(Layer.provide(layerFromUrl(Redacted.make(url), 1)))), Effect.scoped, Effect.orDie)
    const token = yield* createToken({ name: "test-admin", ownerEmail: "admin@example.com", scopes: ["admin"] })
    const client = yield* FleetClient.make({ baseUrl, token })
    const use = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, context as Context.Context<R>) as Effect.Effect<A, E>
    return { baseUrl, client, simulator, databaseUrl: url, logs, use, token, createToken }
  })
