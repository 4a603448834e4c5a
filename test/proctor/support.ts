import { NodeFileSystem } from "@effect/platform-node"
import { Context, Effect, Layer, type Scope } from "effect"
import { defaultCatalogPath, loadCatalog } from "../../src/catalog/Catalog.js"
import { ProctorClient, type ProctorClientOptions, type ProctorClientService } from "../../src/proctor/ProctorClient.js"
import { procsFromCatalog, type SimulatorHandle, type SimulatorOptions, start } from "../../src/proctor/Simulator.js"

export const shippedCatalog = loadCatalog(defaultCatalogPath).pipe(Effect.provide(NodeFileSystem.layer), Effect.orDie)

/** A client for a URL, alive as long as the test's scope (its connection pool is closed with it). */
export const clientFor = (options: ProctorClientOptions): Effect.Effect<ProctorClientService, never, Scope.Scope> =>
  Layer.build(ProctorClient.layerFrom(options)).pipe(Effect.map((context) => Context.get(context, ProctorClient)))

/** The shipped catalog's procs in a simulator on a free port, and a client pointed at it. */
export const simulatorWithClient = (
  options: Partial<SimulatorOptions> = {},
  client: Partial<ProctorClientOptions> = {}
): Effect.Effect<{ readonly sim: SimulatorHandle; readonly proctor: ProctorClientService }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const catalog = yield* shippedCatalog
    const sim = yield* start({ procs: procsFromCatalog(catalog), ...options }).pipe(Effect.orDie)
    const proctor = yield* clientFor({ url: sim.url, ...client })
    return { sim, proctor }
  })

/** Args of a create proc for one VM. */
export const createArgs = (vmName: string): Record<string, string> => ({
  VM_NAME: vmName,
  APPLICATION: "payments",
  ENVIRONMENT: "staging",
  STACK: "java",
  OS_VERSION: "ubuntu-22.04",
  MACHINE_TYPE: "e2-small",
  JDK_VERSION: "17"
})

/** A raw HTTP exchange with the simulator (for what the typed client hides: bodies, headers). */
export const raw = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, contentType: response.headers.get("content-type"), text: await response.text() }
  })
