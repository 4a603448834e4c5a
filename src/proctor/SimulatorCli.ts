import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect } from "effect"
import { defaultCatalogPath, loadCatalog } from "../catalog/Catalog.js"
import { InvalidInput } from "../common/Errors.js"
import { procsFromCatalog, start } from "./Simulator.js"
import { defaultKnobs } from "./SimulatorModel.js"

/** `--token alice@example.com=secret` pairs into a map; the tokens themselves are never printed. */
export const parseTokens = (pairs: ReadonlyArray<string>): Effect.Effect<Readonly<Record<string, string>>, InvalidInput> => {
  const tokens: Record<string, string> = {}
  for (const [index, pair] of pairs.entries()) {
    const at = pair.indexOf("=")
    if (at <= 0 || at === pair.length - 1) {
      return Effect.fail(InvalidInput.one(["token", index], "expected email=token"))
    }
    tokens[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return Effect.succeed(tokens)
}

const rate = (name: string, description: string) =>
  Options.float(name).pipe(Options.withDefault(0), Options.withDescription(`${description} (0 to 1; default 0)`))

const millis = (name: string, fallback: number, description: string) =>
  Options.integer(name).pipe(Options.withDefault(fallback), Options.withDescription(`${description}, in milliseconds (default ${fallback})`))

const defaultPort = 7171

/** `fleet proctor-sim`: runs the proctor simulator (a development tool) until interrupted. */
export const proctorSimCommand = Command.make(
  "proctor-sim",
  {
    port: Options.integer("port").pipe(
      Options.withDefault(defaultPort),
      Options.mapEffect((port) =>
        port >= 0 && port <= 65535
          ? Effect.succeed(port)
          : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--port ${port}: expected a port from 0 to 65535 (0: any free one)`)))
      ),
      Options.withDescription(`Port to listen on (default ${defaultPort}; 0: any free one)`)
    ),
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("Address to listen on (default 127.0.0.1; 0.0.0.0 inside a container)")
    ),
    latency: millis("latency", defaultKnobs.responseLatencyMs, "Delay before every answer"),
    createMs: millis("create-ms", defaultKnobs.durationMs.create, "Time a create execution takes"),
    destroyMs: millis("destroy-ms", defaultKnobs.durationMs.destroy, "Time a destroy execution takes"),
    checkMs: millis("check-ms", defaultKnobs.durationMs.check, "Time a readiness check takes"),
    failureRate: rate("failure-rate", "Share of POSTs answered 500, creating nothing"),
    stuckRate: rate("stuck-rate", "Share of executions stuck in CREATED forever"),
    lostResponseRate: rate("lost-response-rate", "Share of POSTs whose execution is created but whose answer is lost"),
    executionFailureRate: rate("execution-failure-rate", "Share of executions ending in a failure state"),
    seed: Options.integer("seed").pipe(Options.withDefault(defaultKnobs.seed), Options.withDescription(`Seed of the random source (default ${defaultKnobs.seed})`)),
    catalog: Options.text("catalog").pipe(
      Options.withDefault(defaultCatalogPath),
      Options.withDescription("Catalog whose procs the simulator knows (default: the shipped one)")
    ),
    token: Options.text("token").pipe(
      Options.repeated,
      Options.withDescription("email=token; any turns proctor's auth on")
    ),
    minClientVersion: Options.text("min-client-version").pipe(
      Options.optional,
      Options.withDescription("Answer 400 to a lower Client-Version header")
    )
  },
  (options) =>
    Effect.gen(function* () {
      const catalog = yield* loadCatalog(options.catalog)
      const tokens = yield* parseTokens(options.token)
      const procs = procsFromCatalog(catalog)
      const simulator = yield* start({
        procs,
        host: options.host,
        port: options.port,
        ...(Object.keys(tokens).length > 0 ? { auth: { tokens } } : {}),
        ...(options.minClientVersion._tag === "Some" ? { minClientVersion: options.minClientVersion.value } : {}),
        responseLatencyMs: options.latency,
        durationMs: { create: options.createMs, destroy: options.destroyMs, check: options.checkMs },
        failureRate: options.failureRate,
        stuckRate: options.stuckRate,
        lostResponseRate: options.lostResponseRate,
        executionFailureRate: options.executionFailureRate,
        seed: options.seed
      }).pipe(
        // Said with the options that choose where it listens, not as a stack.
        Effect.catchTag("ServeError", (error) =>
          Effect.fail(InvalidInput.one("port", `cannot listen on ${options.host}:${options.port}: ${error.cause instanceof Error ? error.cause.message : String(error.cause)} (--host, --port)`)))
      )
      const knobs = yield* simulator.knobs
      yield* Console.log(
        `PROCTOR SIMULATOR (a development tool, not proctor: nothing real is created) listening on ${simulator.url}\n` +
          `  ${procs.length} procs from ${catalog.source}: ${procs.map((proc) => `${proc.name} (${proc.kind})`).join(", ")}\n` +
          `  auth ${Object.keys(tokens).length > 0 ? `on for ${Object.keys(tokens).join(", ")}` : "off"}; ` +
          `knobs ${JSON.stringify(knobs)}\n` +
          `  ${simulator.url}/__sim/ledger, /__sim/stats, PUT /__sim/config`
      )
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Run the proctor simulator (a development tool speaking proctor's v2 API) until interrupted"))
