import { Config, type ConfigError, Context, Duration, Effect, Either, Layer, Option, Redacted, type Scope } from "effect"
import { Agent, request } from "undici"
import {
  classifyOtherFailure,
  classifySubmitFailure,
  type Execution,
  type ExecutionId,
  ExecutionNotFound,
  type ProcMetadata,
  ProctorPermanentError,
  ProctorTransientError
} from "./Domain.js"
import { durationSetting } from "../config/Settings.js"
import { instrumentProctor } from "../metrics/Proctor.js"
import { headers as v2Headers, V2Wire } from "./V2Wire.js"
import type { ProctorWire, WireRequest } from "./Wire.js"

/** How to reach proctor, resolved. */
export interface ProctorSettings {
  readonly url: string
  /** Sent as `Email-Id` when a submission names no user. */
  readonly email: string
  readonly accessToken: Option.Option<Redacted.Redacted<string>>
  readonly clientVersion: Option.Option<string>
  /** Per request, including reading the answer. */
  readonly timeout: Duration.Duration
}

/** The same, as one passes it by hand (tests, the embedded demo). */
export interface ProctorClientOptions {
  readonly url: string
  readonly email?: string
  readonly accessToken?: Redacted.Redacted<string>
  readonly clientVersion?: string
  readonly timeout?: Duration.DurationInput
}

export const defaultEmail = "fleet@localhost"
export const defaultTimeout = Duration.seconds(10)

export const ProctorSettings = {
  make: (options: ProctorClientOptions): ProctorSettings => ({
    url: options.url,
    email: options.email ?? defaultEmail,
    accessToken: Option.fromNullable(options.accessToken),
    clientVersion: Option.fromNullable(options.clientVersion),
    timeout: options.timeout === undefined ? defaultTimeout : Duration.decode(options.timeout)
  })
}

/** `PROCTOR_URL`: where proctor is, an http(s) URL. */
export const ProctorUrlConfig = Config.string("PROCTOR_URL").pipe(
  Config.validate({ message: "expected an http(s) URL such as http://proctor.internal:8080", validation: (url) => /^https?:\/\/[^\s]+$/.test(url) })
)

/** `PROCTOR_URL`, `PROCTOR_EMAIL`, `PROCTOR_ACCESS_TOKEN` (secret), `PROCTOR_CLIENT_VERSION`, `PROCTOR_TIMEOUT`. */
export const ProctorConfig: Config.Config<ProctorSettings> = Config.all({
  url: ProctorUrlConfig,
  email: Config.string("PROCTOR_EMAIL").pipe(Config.withDefault(defaultEmail)),
  accessToken: Config.option(Config.redacted("PROCTOR_ACCESS_TOKEN")),
  clientVersion: Config.option(Config.string("PROCTOR_CLIENT_VERSION")),
  timeout: durationSetting("PROCTOR_TIMEOUT").pipe(Config.withDefault(defaultTimeout))
})

export interface SubmitInput {
  readonly proc: string
  readonly args: Readonly<Record<string, string>>
  /** On whose behalf the proc runs; the configured email when absent. */
  readonly emailId?: string
}

export interface ProctorClientService {
  /** Exactly one `POST /execution`. No retry here: a retried POST runs the proc again, so the caller decides. */
  readonly submit: (input: SubmitInput) => Effect.Effect<Execution, ProctorTransientError | ProctorPermanentError>
  readonly status: (id: ExecutionId) => Effect.Effect<Execution, ProctorTransientError | ProctorPermanentError | ExecutionNotFound>
  readonly listProcs: () => Effect.Effect<ReadonlyArray<ProcMetadata>, ProctorTransientError | ProctorPermanentError>
  readonly ping: () => Effect.Effect<void, ProctorTransientError | ProctorPermanentError>
}

interface Answer {
  readonly status: number
  readonly text: string
}

/** Removes the token from text that came from elsewhere (an echoing proxy, a transport message). */
const scrub = (secret: Option.Option<Redacted.Redacted<string>>) => (text: string): string =>
  Option.match(secret, {
    onNone: () => text,
    onSome: (token) => {
      const value = Redacted.value(token)
      return value === "" ? text : text.split(value).join("<redacted>")
    }
  })

/** What a failed exchange says: the transport's message and its cause's, never a header. */
const describeTransport = (operation: string, error: unknown): string => {
  const message = (value: unknown) => (value instanceof Error ? value.message : undefined)
  const cause = [message(error), error instanceof Error ? message(error.cause) : undefined].filter(Boolean).join(": ")
  return `${operation}: transport error${cause ? ` (${cause})` : ""}`
}

/**
 * Keep-alive connections to proctor, closed with the client's scope. Enough for every execution
 * the reconciler handles at once (FLEET_RECONCILER_CONCURRENCY) and then some.
 */
const connectionPool = Effect.acquireRelease(
  Effect.sync(() => new Agent({ connections: 256, keepAliveTimeout: 30_000 })),
  (agent) => Effect.promise(() => agent.destroy())
)

/**
 * Builds the client for explicit settings. Each call is one request through undici, proctor's
 * answer read whole; a request not answered within the timeout is aborted. (Not @effect/platform's
 * HttpClient: every execution makes a few of these calls, and on this hot path its request and
 * response wrappers cost three times the exchange itself; see bench/README.md.)
 */
export const makeProctorClient = (settings: ProctorSettings, wire: ProctorWire = V2Wire): Effect.Effect<ProctorClientService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const agent = yield* connectionPool
    const clean = scrub(settings.accessToken)
    const root = settings.url.replace(/\/+$/, "")
    const fixedHeaders: Record<string, string> = {}
    if (Option.isSome(settings.accessToken)) fixedHeaders[v2Headers.accessToken] = Redacted.value(settings.accessToken.value)
    if (Option.isSome(settings.clientVersion)) fixedHeaders[v2Headers.clientVersion] = settings.clientVersion.value
    const timeoutMs = Duration.toMillis(settings.timeout)
    const timeoutReason = `no answer within ${Duration.format(settings.timeout)}`

    /** One request, its whole answer read, every failure of the exchange itself counted as transient. */
    const exchange = (operation: string, call: WireRequest, emailId: string) =>
      Effect.async<Answer, ProctorTransientError>((resume, interrupted) => {
        const abort = new AbortController()
        const stop = () => abort.abort()
        interrupted.addEventListener("abort", stop, { once: true })
        let timedOut = false
        const timer = setTimeout(() => {
          timedOut = true
          abort.abort()
        }, timeoutMs)
        const done = (answer: Effect.Effect<Answer, ProctorTransientError>) => {
          clearTimeout(timer)
          interrupted.removeEventListener("abort", stop)
          resume(answer)
        }
        const headers: Record<string, string> = { ...fixedHeaders, [v2Headers.email]: emailId }
        if (call.body !== undefined) headers["content-type"] = "application/json"
        request(`${root}${call.path}`, { method: call.method, headers, body: call.body ?? null, dispatcher: agent, signal: abort.signal })
          .then((response) => response.body.text().then((text) => ({ status: response.statusCode, text })))
          .then(
            (answer) => done(Effect.succeed(answer)),
            (error: unknown) =>
              done(Effect.fail(new ProctorTransientError({ reason: timedOut ? `${operation}: ${timeoutReason}` : clean(describeTransport(operation, error)) })))
          )
      })

    const decodeOk = <A>(operation: string, answer: Answer, decode: (text: string) => Either.Either<A, string>) =>
      Either.match(decode(answer.text), {
        // A 2xx we cannot read: proctor may have acted on it, so it is as ambiguous as no answer.
        onLeft: (reason) => Effect.fail(new ProctorTransientError({ reason: clean(`${operation}: ${reason}`), status: answer.status })),
        onRight: (value) => Effect.succeed(value)
      })

    const isOk = (status: number) => status >= 200 && status < 300

    const failWith = (error: ProctorTransientError | ProctorPermanentError) =>
      Effect.fail(
        error._tag === "ProctorTransientError"
          ? new ProctorTransientError({ reason: clean(error.reason), ...(error.status === undefined ? {} : { status: error.status }) })
          : new ProctorPermanentError({ reason: clean(error.reason), status: error.status })
      )

    const submit = (input: SubmitInput) =>
      Effect.gen(function* () {
        const operation = `POST /execution (${input.proc})`
        const answer = yield* exchange(operation, wire.submitRequest({ proc: input.proc, args: input.args }), input.emailId ?? settings.email)
        if (isOk(answer.status)) return yield* decodeOk(operation, answer, wire.decodeExecution)
        return yield* failWith(classifySubmitFailure(answer.status, answer.text))
      })

    const status = (id: ExecutionId) =>
      Effect.gen(function* () {
        const operation = `GET /execution/${id}/status`
        const answer = yield* exchange(operation, wire.statusRequest(id), settings.email)
        if (isOk(answer.status)) return yield* decodeOk(operation, answer, wire.decodeExecution)
        if (answer.status === 404) return yield* Effect.fail(new ExecutionNotFound({ id }))
        return yield* failWith(classifyOtherFailure(answer.status, answer.text))
      })

    const listProcs = () =>
      Effect.gen(function* () {
        const answer = yield* exchange("GET /metadata", wire.metadataRequest, settings.email)
        if (isOk(answer.status)) return yield* decodeOk("GET /metadata", answer, wire.decodeProcs)
        return yield* failWith(classifyOtherFailure(answer.status, answer.text))
      })

    const ping = () =>
      Effect.gen(function* () {
        const answer = yield* exchange("GET /ping", wire.pingRequest, settings.email)
        if (!isOk(answer.status)) return yield* failWith(classifyOtherFailure(answer.status, answer.text))
        if (answer.text.trim() !== "pong") {
          return yield* Effect.fail(new ProctorPermanentError({ reason: `GET /ping: expected pong, got ${JSON.stringify(answer.text.slice(0, 80))}`, status: answer.status }))
        }
      })

    // Counted and timed for /metrics (fleet_proctor_calls_total by operation and outcome).
    return ProctorClient.of(instrumentProctor({ submit, status, listProcs, ping }))
  })

/** Proctor's HTTP API, one call per method, errors classified as transient or permanent. */
export class ProctorClient extends Context.Tag("fleet/ProctorClient")<ProctorClient, ProctorClientService>() {
  /** For explicit settings; its connections are closed with the layer. */
  static readonly layer = (settings: ProctorSettings): Layer.Layer<ProctorClient> => Layer.scoped(ProctorClient, makeProctorClient(settings))

  /** From explicit values. */
  static readonly layerFrom = (options: ProctorClientOptions): Layer.Layer<ProctorClient> => ProctorClient.layer(ProctorSettings.make(options))

  /** From `PROCTOR_*` configuration. */
  static readonly layerConfig: Layer.Layer<ProctorClient, ConfigError.ConfigError> = Layer.scoped(
    ProctorClient,
    Effect.flatMap(ProctorConfig, (settings) => makeProctorClient(settings))
  )
}
