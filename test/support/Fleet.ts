import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { ConfigProvider, Effect, Layer, Redacted, type Scope } from "effect"
import { createServer } from "node:http"
import { AuthenticationAnonymous } from "../../src/auth/Anonymous.js"
import { Catalog } from "../../src/catalog/Catalog.js"
import { FleetClient } from "../../src/client/Client.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { ServeApi } from "../../src/http/Server.js"
import { layerWith, makePino } from "../../src/logging/Logger.js"
import { ProctorClient } from "../../src/proctor/ProctorClient.js"
import { ProctorSimulator, type SimulatorHandle, type SimulatorOptions } from "../../src/proctor/Simulator.js"
import { ReconcilerLoop } from "../../src/vms/Reconciler.js"
import { VmServicesLive } from "../../src/main.js"
import { freshDatabase } from "./Database.js"
import { Writable } from "node:stream"

/** Fast defaults for tests: quick polls, short leases; each test may override. */
export const testSettings: Record<string, string> = {
  FLEET_POLL_INITIAL: "20 millis",
  FLEET_POLL_MAX: "200 millis",
  FLEET_RECONCILE_INTERVAL: "50 millis",
  FLEET_EXECUTION_DEADLINE: "30 seconds",
  FLEET_LEASE: "5 seconds",
  FLEET_SUBMIT_BACKOFF: "10 millis",
  FLEET_SUBMIT_BACKOFF_MAX: "50 millis",
  FLEET_RESUBMIT_DELAY: "100 millis",
  PROCTOR_TIMEOUT: "2 seconds"
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
} = {}): Effect.Effect<TestFleet, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { url } = yield* freshDatabase
    const logs = new CapturedLogs()
    const settings = new Map(Object.entries({ ...testSettings, ...options.settings }))
    const catalog = yield* Effect.provide(Catalog, Catalog.layer.pipe(Layer.provide(NodeContext.layer))).pipe(Effect.orDie)
    const simulator = yield* ProctorSimulator.start({
      procs: ProctorSimulator.procsFromCatalog(catalog).filter((proc) => !options.withoutProcs?.includes(proc.name)),
      durationMs: { create: 30, destroy: 20, check: 10 },
      ...options.simulator
    }).pipe(Effect.orDie)
    const services = VmServicesLive.pipe(
      Layer.provideMerge(Layer.mergeAll(
        Layer.succeed(Catalog, catalog),
        ProctorClient.layerFrom({ url: simulator.url }),
        layerFromUrl(Redacted.make(url), 5)
      ))
    )
    const app = Layer.mergeAll(
      ServeApi.pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))),
      options.reconcile === false ? Layer.empty : ReconcilerLoop
    ).pipe(
      Layer.provide(AuthenticationAnonymous),
      Layer.provide(services),
      Layer.provide(NodeContext.layer),
      Layer.provide(layerWith(makePino({ format: "json", destination: logs.stream }))),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(settings)))
    )
    const context = yield* Layer.build(app).pipe(Effect.orDie)
    const baseUrl = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address)).pipe(Effect.provide(context))
    const client = yield* FleetClient.make({ baseUrl })
    return { baseUrl, client, simulator, databaseUrl: url, logs }
  })
