/**
 * The proctor SIMULATOR: a development tool that speaks proctor's v2 HTTP API (quirks included)
 * for tests, benchmarks and demos. It is not proctor and never stands in for it in production.
 *
 * Besides proctor's routes it serves `/__sim/ledger`, `/__sim/stats` and `/__sim/config` so a
 * test can check what was "created" and "destroyed", count calls and change behaviour live.
 */
import { ServeError } from "@effect/platform/HttpServerError"
import { Duration, Effect, ExecutionStrategy, Exit, Fiber, FiberId, Option, Runtime, Schema, Scope } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { CatalogData } from "../catalog/Catalog.js"
import { decodeInput, InvalidInput } from "../common/Errors.js"
import { ProcMetadata } from "./Domain.js"
import {
  compareVersions,
  type Durations,
  KnobsPatch,
  type ProcKind,
  type SimProc,
  type SimulatorKnobs,
  SimulatorKnobs as KnobsSchema,
  type SimulatorLedger,
  SimulatorModel,
  type SimulatorStats,
  defaultKnobs
} from "./SimulatorModel.js"
import { executionJsonText, messages, paths, procsJsonText } from "./V2Wire.js"

export interface SimulatorOptions {
  readonly procs: ReadonlyArray<SimProc>
  /** 127.0.0.1 unless set. */
  readonly host?: string
  /** 0 (any free port) unless set. */
  readonly port?: number
  /** Proctor's auth: when set, every API call but `/ping` needs `Email-Id` and that user's `Access-Token`. */
  readonly auth?: { readonly tokens: Readonly<Record<string, string>> }
  /** A `Client-Version` header below this gets 400. */
  readonly minClientVersion?: string
  readonly responseLatencyMs?: number
  readonly durationMs?: Partial<Durations>
  readonly failureRate?: number
  readonly executionFailureRate?: number
  readonly stuckRate?: number
  readonly lostResponseRate?: number
  readonly seed?: number
}

/** A running simulator. Times in the ledger are the simulator's clock (the Effect `Clock` it was started with). */
export interface SimulatorHandle {
  /** Base URL, e.g. http://127.0.0.1:43121 */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly ledger: Effect.Effect<SimulatorLedger>
  readonly stats: Effect.Effect<SimulatorStats>
  readonly knobs: Effect.Effect<SimulatorKnobs>
  readonly configure: (patch: KnobsPatch) => Effect.Effect<SimulatorKnobs>
  /** Stops listening now (the scope would do it at its end). */
  readonly close: Effect.Effect<void>
}

/** Arg names every proc of a kind receives from fleet (see catalog.yaml). */
const argsByKind: Record<ProcKind, ReadonlyArray<string>> = {
  create: ["VM_NAME", "APPLICATION", "ENVIRONMENT", "STACK", "OS_VERSION", "MACHINE_TYPE"],
  destroy: ["VM_NAME", "APPLICATION", "ENVIRONMENT"],
  check: ["VM_NAME"]
}

/** Exactly the catalog's procs: create procs create, the decommission proc destroys, the readiness proc checks. */
export const procsFromCatalog = (catalog: CatalogData): ReadonlyArray<SimProc> => {
  const procs = new Map<string, { kind: ProcKind; args: Set<string>; description: string }>()
  const add = (name: string, kind: ProcKind, extra: Readonly<Record<string, string>>, description: string) => {
    const known = procs.get(name)
    if (known) {
      for (const arg of Object.keys(extra)) known.args.add(arg)
      return
    }
    procs.set(name, { kind, args: new Set([...argsByKind[kind], ...Object.keys(extra)]), description })
  }
  for (const entry of catalog.spec.procs.create) {
    add(entry.proc, "create", entry.args, `creates ${entry.stack} VMs (simulated)`)
  }
  add(catalog.decommissionProc.proc, "destroy", catalog.decommissionProc.args, "decommissions a VM (simulated)")
  Option.map(catalog.readinessProc, (entry) => add(entry.proc, "check", entry.args, "checks a VM's health (simulated)"))
  return [...procs.entries()].map(([name, proc]) => ({ name, kind: proc.kind, args: [...proc.args], description: proc.description }))
}

const toMetadata = (proc: SimProc): ProcMetadata =>
  new ProcMetadata({
    name: proc.name,
    description: proc.description ?? `simulated ${proc.kind} proc`,
    imageName: `fleet-sim/${proc.name}`,
    envVars: { secrets: [], args: (proc.args ?? []).map((name) => ({ name, description: `${name} (simulated)` })) },
    authorizedGroups: proc.authorizedEmails ?? [],
    author: "fleet proctor simulator",
    contributors: "",
    organization: "fleet"
  })

const knobsFrom = (options: SimulatorOptions): SimulatorKnobs => ({
  responseLatencyMs: options.responseLatencyMs ?? defaultKnobs.responseLatencyMs,
  durationMs: { ...defaultKnobs.durationMs, ...options.durationMs },
  failureRate: options.failureRate ?? defaultKnobs.failureRate,
  executionFailureRate: options.executionFailureRate ?? defaultKnobs.executionFailureRate,
  stuckRate: options.stuckRate ?? defaultKnobs.stuckRate,
  lostResponseRate: options.lostResponseRate ?? defaultKnobs.lostResponseRate,
  seed: options.seed ?? defaultKnobs.seed
})

// Proctor writes every body without a Content-Type, so Go's net/http sniffs one: its JSON goes
// out as text/plain too. The client must not depend on the header, and the simulator keeps it so.
const goSniffed = "text/plain; charset=utf-8"

const answer = (response: ServerResponse, status: number, contentType: string, body: string) => {
  const length = Buffer.byteLength(body)
  response.writeHead(
    status,
    length > 0 ? { "content-type": contentType, "content-length": String(length) } : { "content-type": contentType }
  )
  response.end(body)
}
const plain = (response: ServerResponse, status: number, body: string) => answer(response, status, goSniffed, body)
const json = plain
const emptyAnswer = (response: ServerResponse, status: number) => {
  response.writeHead(status)
  response.end()
}
const simJson = (response: ServerResponse, body: unknown) => answer(response, 200, "application/json", JSON.stringify(body))

/** gorilla/mux's answer to an unknown route or method. */
const notFound = (response: ServerResponse) => plain(response, 404, "404 page not found\n")

/** A handler that throws answers an empty 500 rather than taking the process down. */
const guarded = (response: ServerResponse, handle: () => void) => {
  try {
    handle()
  } catch {
    if (!response.headersSent) response.writeHead(500)
    if (!response.writableEnded) response.end()
  }
}

const maxUint64 = 18446744073709551615n

/** What Go's json.Decoder accepts into proctor's `{ name, args, callback_url }`; undefined when it would fail. */
const readSubmitBody = (text: string): { readonly proc: string; readonly args: Readonly<Record<string, string>> } | undefined => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return undefined
  }
  if (body === null) return { proc: "", args: {} }
  if (typeof body !== "object" || Array.isArray(body)) return undefined
  const record = body as Record<string, unknown>
  const name = record["name"] ?? ""
  const args = record["args"] ?? {}
  const callback = record["callback_url"] ?? ""
  if (typeof name !== "string" || typeof callback !== "string") return undefined
  if (args === null) return { proc: name, args: {} }
  if (typeof args !== "object" || Array.isArray(args)) return undefined
  for (const value of Object.values(args as Record<string, unknown>)) {
    if (typeof value !== "string") return undefined
  }
  return { proc: name, args: args as Record<string, string> }
}

/** Proctor's routes (gorilla/mux: exact, case-sensitive paths; the query string is not part of the path). */
type Route = "submit" | "metadata" | "ping" | "ledger" | "stats" | "knobs" | "configure" | "unknown" | { readonly statusOf: string }

const statusPath = /^\/execution\/([^/]+)\/status$/

const routeOf = (method: string, url: string): Route => {
  const query = url.indexOf("?")
  const path = query === -1 ? url : url.slice(0, query)
  switch (method) {
    case "POST":
      return path === paths.execution ? "submit" : "unknown"
    case "PUT":
      return path === "/__sim/config" ? "configure" : "unknown"
    case "GET": {
      if (path === paths.metadata) return "metadata"
      if (path === paths.ping) return "ping"
      if (path === "/__sim/ledger") return "ledger"
      if (path === "/__sim/stats") return "stats"
      if (path === "/__sim/config") return "knobs"
      const status = statusPath.exec(path)
      return status === null ? "unknown" : { statusOf: decodeURIComponentOr(status[1]!) }
    }
    default:
      return "unknown"
  }
}

/** A path variable as mux hands it over (decoded); as sent when it is not a valid escape. */
const decodeURIComponentOr = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name]
  return typeof value === "string" ? value : undefined
}

/** The largest body the simulator reads (a proctor request is a proc name and a few args). */
export const maxBodyBytes = 1024 * 1024

/**
 * The whole body as UTF-8 text (undefined when reading it fails), handed to `then` unless the
 * caller has gone meanwhile. A body over maxBodyBytes is answered 413 and its connection closed:
 * the rest of it is not kept.
 */
const readText = (request: IncomingMessage, response: ServerResponse, then: (text: string | undefined) => void) => {
  const chunks: Array<Buffer> = []
  let size = 0
  let settled = false
  const settle = (result: string | undefined) => {
    if (settled) return
    settled = true
    if (!response.destroyed) guarded(response, () => then(result))
  }
  request.on("data", (chunk: Buffer) => {
    if (settled) return
    size += chunk.length
    if (size <= maxBodyBytes) {
      chunks.push(chunk)
      return
    }
    settled = true
    chunks.length = 0
    response.shouldKeepAlive = false
    plain(response, 413, `request body larger than ${maxBodyBytes} bytes`)
  })
  request.once("end", () => settle(Buffer.concat(chunks).toString("utf8")))
  request.once("error", () => settle(undefined))
  request.once("close", () => settle(undefined))
}

const decodeKnobs = decodeInput(KnobsSchema)
const decodePatch = decodeInput(KnobsPatch)

/**
 * Starts a simulator on `host:port`, for as long as the scope lasts. The simulator's notion of
 * time is the `Clock` of the calling fiber, so a test can run it under `TestClock` and move time
 * with `TestClock.adjust`.
 *
 * It answers from a plain `node:http` listener: benchmarks run it on the machine under test, where
 * an Effect fiber and router per call cost several times the CPU of the answer itself.
 */
export const start = (options: SimulatorOptions): Effect.Effect<SimulatorHandle, InvalidInput | ServeError, Scope.Scope> =>
  Effect.gen(function* () {
    const knobs = yield* decodeKnobs(knobsFrom(options))
    if (options.minClientVersion !== undefined && compareVersions(options.minClientVersion, "0") === undefined) {
      return yield* Effect.fail(InvalidInput.one("minClientVersion", "expected a version such as 1.2.0"))
    }
    const model = new SimulatorModel({ procs: options.procs, knobs })
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    // Latency sleeps run on the caller's runtime, hence on its clock (a TestClock in tests).
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const sleeping = new Set<Fiber.RuntimeFiber<void>>()
    const tokens = options.auth?.tokens
    const minClientVersion = options.minClientVersion
    const metadataText = procsJsonText(model.procList.map(toMetadata))

    /** Proctor's front door: latency, then the client-version middleware, then auth. */
    const proctorApi = (
      request: IncomingMessage,
      response: ServerResponse,
      requireAuth: boolean,
      handle: (emailId: string) => void
    ) => {
      model.countCall()
      const latency = model.knobs.responseLatencyMs
      if (latency <= 0) return frontDoor(request, response, requireAuth, handle)
      const fiber = runFork(Effect.interruptible(clock.sleep(Duration.millis(latency))))
      sleeping.add(fiber)
      const leave = () => {
        if (!response.writableEnded) fiber.unsafeInterruptAsFork(FiberId.none)
      }
      response.once("close", leave)
      fiber.addObserver((exit) => {
        sleeping.delete(fiber)
        response.off("close", leave)
        if (Exit.isSuccess(exit)) guarded(response, () => frontDoor(request, response, requireAuth, handle))
      })
    }

    const frontDoor = (request: IncomingMessage, response: ServerResponse, requireAuth: boolean, handle: (emailId: string) => void) => {
      const version = header(request, "client-version")
      if (minClientVersion !== undefined && version !== undefined && version !== "") {
        const comparison = compareVersions(version, minClientVersion)
        if (comparison === undefined) {
          model.count("outdatedClient")
          return plain(response, 400, messages.invalidClientVersion(`Malformed version: ${version}`))
        }
        if (comparison < 0) {
          model.count("outdatedClient")
          return plain(response, 400, messages.outdatedClient(version))
        }
      }
      const emailId = header(request, "email-id") ?? ""
      if (requireAuth && tokens !== undefined) {
        const token = header(request, "access-token") ?? ""
        if (emailId === "" || token === "" || tokens[emailId] !== token) {
          model.count("unauthorized")
          return emptyAnswer(response, 401)
        }
      }
      handle(emailId)
    }

    const submit = (request: IncomingMessage, response: ServerResponse, emailId: string) =>
      readText(request, response, (text) => {
        const body = text === undefined ? undefined : readSubmitBody(text)
        if (body === undefined) {
          model.count("malformed")
          return plain(response, 400, messages.malformedRequest)
        }
        const proc = model.proc(body.proc)
        if (tokens !== undefined && proc?.authorizedEmails !== undefined && !proc.authorizedEmails.includes(emailId)) {
          model.count("forbidden")
          return emptyAnswer(response, 403)
        }
        const result = model.submit(now(), { proc: body.proc, args: body.args, emailId })
        switch (result._tag) {
          case "UnknownProc":
            return plain(response, 500, `${messages.jobExecutionError}, Errors Detail: metadata not found for proc ${result.proc}`)
          case "Failed":
            return plain(response, 500, `${messages.jobExecutionError}, Errors Detail: simulated failure: the Kubernetes API refused the job`)
          case "Accepted":
            // The execution exists; the caller never hears of it.
            if (result.lost) return request.socket.destroy()
            return json(response, 201, executionJsonText(result.execution))
        }
      })

    const status = (response: ServerResponse, id: string) => {
      if (!/^[0-9]{1,20}$/.test(id) || BigInt(id) > maxUint64) {
        model.count("statusBadRequest")
        return plain(response, 400, messages.pathParameterError)
      }
      // ParseUint accepts leading zeros; ids are stored without them.
      const view = model.status(now(), BigInt(id).toString())
      return view === undefined ? plain(response, 404, messages.executionNotFound) : json(response, 200, executionJsonText(view))
    }

    const configure = (request: IncomingMessage, response: ServerResponse) =>
      readText(request, response, (text) => {
        let raw: unknown
        try {
          raw = JSON.parse(text ?? "")
        } catch {
          return plain(response, 400, "expected a JSON object of simulator knobs")
        }
        Effect.runSync(
          decodePatch(raw).pipe(
            Effect.match({
              onFailure: (error) => plain(response, 400, error.message),
              onSuccess: (patch) => simJson(response, model.configure(patch))
            })
          )
        )
      })

    const listener = (request: IncomingMessage, response: ServerResponse) =>
      guarded(response, () => {
        const route = routeOf(request.method ?? "", request.url ?? "")
        switch (route) {
          case "submit":
            return proctorApi(request, response, true, (emailId) => submit(request, response, emailId))
          case "metadata":
            return proctorApi(request, response, true, () => {
              model.count("metadata")
              json(response, 200, metadataText)
            })
          case "ping":
            return proctorApi(request, response, false, () => {
              model.count("ping")
              plain(response, 200, "pong")
            })
          case "ledger":
            return simJson(response, model.ledger(now()))
          case "stats":
            return simJson(response, model.stats())
          case "knobs":
            return simJson(response, model.knobs)
          case "configure":
            return configure(request, response)
          case "unknown":
            return notFound(response)
          default:
            return proctorApi(request, response, true, () => status(response, route.statusOf))
        }
      })

    const server = createServer(listener)

    const outer = yield* Effect.scope
    const serverScope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    yield* Scope.addFinalizer(
      serverScope,
      Effect.suspend(() => Fiber.interruptAll([...sleeping])).pipe(
        Effect.zipRight(Effect.async<void>((resume) => {
          if (!server.listening) return resume(Effect.void)
          server.close(() => resume(Effect.void))
          // Keep-alive and in-flight connections would hold the close (and the caller's scope) open.
          server.closeAllConnections()
        }))
      )
    )
    yield* Effect.async<void, ServeError>((resume) => {
      const failed = (cause: Error) => resume(Effect.fail(new ServeError({ cause })))
      server.once("error", failed)
      server.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 }, () => {
        server.off("error", failed)
        resume(Effect.void)
      })
    })
    const address = server.address()
    if (address === null || typeof address === "string") return yield* Effect.dieMessage("the simulator listens on TCP only")
    // `::` is reported as 0.0.0.0, as @effect/platform did.
    const hostname = address.address === "::" ? "0.0.0.0" : address.address
    const urlHost = hostname.includes(":") ? `[${hostname}]` : hostname

    return {
      url: `http://${urlHost}:${address.port}`,
      host: hostname,
      port: address.port,
      ledger: Effect.sync(() => model.ledger(now())),
      stats: Effect.sync(() => model.stats()),
      knobs: Effect.sync(() => model.knobs),
      configure: (patch: KnobsPatch) =>
        Schema.decodeUnknown(KnobsPatch)(patch).pipe(
          Effect.orDie,
          Effect.map((valid) => model.configure(valid))
        ),
      close: Scope.close(serverScope, Exit.void)
    } satisfies SimulatorHandle
  })

/** The proctor simulator (a development tool). */
export const ProctorSimulator = { start, procsFromCatalog } as const
