import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Duration, Effect, identity, Layer, type Redacted, Schedule, Schema } from "effect"
import { FleetApi } from "../http/Api.js"
import type { ReplacementRequest } from "../executor/Api.js"
import { isActiveRun, type RunId, type RunView } from "../executor/Domain.js"
import type { CreateVmRequest, RequestId, VmRequest } from "../vms/Domain.js"

export interface FleetClientOptions {
  /** Where fleet listens, e.g. http://127.0.0.1:8080 */
  readonly baseUrl: string
  /** An API token (`fleet tokens create`); sent as `Authorization: Bearer …`. */
  readonly token?: string | Redacted.Redacted<string> | undefined
}

/** A typed client for every endpoint, derived from the same HttpApi definition as the server. */
export const makeFleetClient = (options: FleetClientOptions) =>
  HttpApiClient.make(FleetApi, {
    baseUrl: options.baseUrl,
    transformClient: options.token === undefined
      ? identity
      : HttpClient.mapRequest(HttpClientRequest.bearerToken(options.token))
  })

export type FleetClient = Effect.Effect.Success<ReturnType<typeof makeFleetClient>>

/** The same, with Node's HTTP client built in: `Effect.runPromise(FleetClient.make({ baseUrl }))`. */
export const FleetClient = {
  make: (options: FleetClientOptions) =>
    makeFleetClient(options).pipe(
      // Node's global dispatcher: the client stays usable for as long as the caller keeps it.
      Effect.provide(NodeHttpClient.layerUndiciWithoutDispatcher.pipe(Layer.provide(NodeHttpClient.dispatcherLayerGlobal)))
    )
}

export class WaitTimedOut extends Schema.TaggedError<WaitTimedOut>()("WaitTimedOut", {
  message: Schema.String
}) {}

export interface WaitOptions {
  /** Give up after this long (default 10 minutes). */
  readonly timeout?: Duration.DurationInput
  /** First delay between polls (default 500 ms); doubles up to `maxDelay` (default 10 seconds). */
  readonly initialDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
}

/** Polls with exponential backoff, capped; used by every wait helper. */
export const pollSchedule = (options: WaitOptions) => {
  const maxDelay = Duration.decode(options.maxDelay ?? "10 seconds")
  return Schedule.exponential(options.initialDelay ?? "500 millis").pipe(
    Schedule.modifyDelay((delay) => Duration.min(delay, maxDelay))
  )
}

/**
 * Repeats `poll` with backoff until `done` holds, retrying failures that look transient
 * (network errors) along the way, and fails with WaitTimedOut after the timeout.
 */
export const waitUntil = <A, E, R>(
  poll: Effect.Effect<A, E, R>,
  done: (value: A) => boolean,
  what: string,
  options: WaitOptions = {}
): Effect.Effect<A, E | WaitTimedOut, R> => {
  const timeout = Duration.decode(options.timeout ?? "10 minutes")
  return poll.pipe(
    Effect.retry({
      schedule: pollSchedule(options),
      while: (error) => typeof error === "object" && error !== null && "_tag" in error && error._tag === "RequestError"
    }),
    // passthrough: the repeat ends with the last value polled, not the schedule's output.
    Effect.repeat({ schedule: Schedule.passthrough(pollSchedule(options) as Schedule.Schedule<Duration.Duration, A>), until: done }),
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new WaitTimedOut({ message: `${what} did not settle within ${Duration.format(timeout)}` })
    })
  )
}

/** Waits until every VM of a request is settled (ready, failed or timed out). */
export const waitForRequest = (client: FleetClient, id: RequestId, options: WaitOptions = {}) =>
  waitUntil(client.vms.getRequest({ path: { id } }), (request: VmRequest) => request.state !== "in_progress", `VM request ${id}`, options)

/** Requests VMs and waits until the request is settled. */
export const createVmsAndWait = (client: FleetClient, request: CreateVmRequest, options: WaitOptions = {}) =>
  Effect.flatMap(client.vms.createRequest({ payload: request }), (accepted) => waitForRequest(client, accepted.id, options))

/** Waits until a run has finished (succeeded, failed, cancelled, aborted) or is paused (it then needs an operator). */
export const waitForRun = (client: FleetClient, id: RunId, options: WaitOptions = {}) =>
  waitUntil(client.runs.getRun({ path: { id } }), (run: RunView) => !isActiveRun(run.state) || run.state === "paused", `run ${id}`, options)

/**
 * Starts the on-demand replacement of an application's fleet (`POST /v1/applications/{application}/replacements`)
 * and waits for its run, as `waitForRun` does. Needs a token with `runs:write` and `plans:read`.
 */
export const startReplacementAndWait = (client: FleetClient, application: string, request: ReplacementRequest, options: WaitOptions = {}) =>
  Effect.flatMap(
    client.runs.replaceApplication({ path: { application }, payload: request }),
    (started) => waitForRun(client, started.id, options)
  )
