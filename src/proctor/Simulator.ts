/**
 * The proctor SIMULATOR: a development tool that speaks proctor's v2 HTTP API (quirks included)
 * for tests, benchmarks and demos. It is not proctor and never stands in for it in production.
 *
 * Besides proctor's routes it serves `/__sim/ledger`, `/__sim/stats` and `/__sim/config` so a
 * test can check what was "created" and "destroyed", count calls and change behaviour live.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { Duration, Effect, ExecutionStrategy, Exit, Option, Schema, Scope } from "effect"
import { createServer } from "node:http"
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
const plain = (status: number, body: string) => HttpServerResponse.text(body, { status, contentType: goSniffed })
const json = plain
const emptyAnswer = (status: number) => HttpServerResponse.empty({ status })
const simJson = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

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

const decodeKnobs = decodeInput(KnobsSchema)
const decodePatch = decodeInput(KnobsPatch)

/**
 * Starts a simulator on `host:port`, for as long as the scope lasts. The simulator's notion of
 * time is the `Clock` of the calling fiber, so a test can run it under `TestClock` and move time
 * with `TestClock.adjust`.
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
    const tokens = options.auth?.tokens
    const minClientVersion = options.minClientVersion
    const metadataText = procsJsonText(model.procList.map(toMetadata))

    /** Proctor's front door: latency, then the client-version middleware, then auth. */
    const proctorApi = <E, R>(
      requireAuth: boolean,
      handler: (request: HttpServerRequest.HttpServerRequest, emailId: string) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
    ) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        model.countCall()
        const latency = model.knobs.responseLatencyMs
        if (latency > 0) yield* clock.sleep(Duration.millis(latency))
        const version = request.headers["client-version"]
        if (minClientVersion !== undefined && version !== undefined && version !== "") {
          const comparison = compareVersions(version, minClientVersion)
          if (comparison === undefined) {
            model.count("outdatedClient")
            return plain(400, messages.invalidClientVersion(`Malformed version: ${version}`))
          }
          if (comparison < 0) {
            model.count("outdatedClient")
            return plain(400, messages.outdatedClient(version))
          }
        }
        const emailId = request.headers["email-id"] ?? ""
        if (requireAuth && tokens !== undefined) {
          const token = request.headers["access-token"] ?? ""
          if (emailId === "" || token === "" || tokens[emailId] !== token) {
            model.count("unauthorized")
            return emptyAnswer(401)
          }
        }
        return yield* handler(request, emailId)
      })

    const submit = proctorApi(true, (request, emailId) =>
      Effect.gen(function* () {
        const text = yield* request.text.pipe(Effect.orElseSucceed(() => undefined))
        const body = text === undefined ? undefined : readSubmitBody(text)
        if (body === undefined) {
          model.count("malformed")
          return plain(400, messages.malformedRequest)
        }
        const proc = model.proc(body.proc)
        if (tokens !== undefined && proc?.authorizedEmails !== undefined && !proc.authorizedEmails.includes(emailId)) {
          model.count("forbidden")
          return emptyAnswer(403)
        }
        const result = model.submit(now(), { proc: body.proc, args: body.args, emailId })
        switch (result._tag) {
          case "UnknownProc":
            return plain(500, `${messages.jobExecutionError}, Errors Detail: metadata not found for proc ${result.proc}`)
          case "Failed":
            return plain(500, `${messages.jobExecutionError}, Errors Detail: simulated failure: the Kubernetes API refused the job`)
          case "Accepted": {
            if (result.lost) {
              // The execution exists; the caller never hears of it. The server interrupts this fiber on close.
              NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
              return yield* Effect.never
            }
            return json(201, executionJsonText(result.execution))
          }
        }
      }))

    const status = proctorApi(true, () =>
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const id = params["id"] ?? ""
        if (!/^[0-9]{1,20}$/.test(id) || BigInt(id) > maxUint64) {
          model.count("statusBadRequest")
          return plain(400, messages.pathParameterError)
        }
        // ParseUint accepts leading zeros; ids are stored without them.
        const view = model.status(now(), BigInt(id).toString())
        return view === undefined ? plain(404, messages.executionNotFound) : json(200, executionJsonText(view))
      }))

    const metadata = proctorApi(true, () =>
      Effect.sync(() => {
        model.count("metadata")
        return json(200, metadataText)
      }))

    const ping = proctorApi(false, () =>
      Effect.sync(() => {
        model.count("ping")
        return plain(200, "pong")
      }))

    const configure = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const text = yield* request.text.pipe(Effect.orElseSucceed(() => ""))
      let raw: unknown
      try {
        raw = JSON.parse(text)
      } catch {
        return plain(400, "expected a JSON object of simulator knobs")
      }
      return yield* decodePatch(raw).pipe(
        Effect.match({
          onFailure: (error) => plain(400, error.message),
          onSuccess: (patch) => simJson(model.configure(patch))
        })
      )
    })

    const router = HttpRouter.empty.pipe(
      HttpRouter.post(paths.execution, submit),
      HttpRouter.get("/execution/:id/status", status),
      HttpRouter.get(paths.metadata, metadata),
      HttpRouter.get(paths.ping, ping),
      HttpRouter.get("/__sim/ledger", Effect.sync(() => simJson(model.ledger(now())))),
      HttpRouter.get("/__sim/stats", Effect.sync(() => simJson(model.stats()))),
      HttpRouter.get("/__sim/config", Effect.sync(() => simJson(model.knobs))),
      HttpRouter.put("/__sim/config", configure),
      // gorilla/mux's answer to an unknown route
      HttpRouter.all("*", Effect.succeed(plain(404, "404 page not found\n")))
    )

    const outer = yield* Effect.scope
    const serverScope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const server = yield* NodeHttpServer.make(() => createServer(), { host: options.host ?? "127.0.0.1", port: options.port ?? 0 }).pipe(
      Scope.extend(serverScope)
    )
    yield* server.serve(router).pipe(Scope.extend(serverScope))
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("the simulator listens on TCP only")
    const urlHost = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname

    return {
      url: `http://${urlHost}:${address.port}`,
      host: address.hostname,
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
