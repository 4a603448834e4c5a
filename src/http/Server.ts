import {
  HttpApiBuilder,
  HttpApiSwagger,
  HttpApp,
  HttpMethod,
  HttpMiddleware,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, Context, Effect, Exit, FiberRef, Layer, Option } from "effect"
import { createServer, type Server } from "node:http"
import type { Duplex } from "node:stream"
import { AuditHttp } from "../audit/Http.js"
import { auditMutations, RequestRecords } from "../audit/Middleware.js"
import { AuditRepo } from "../audit/Repo.js"
import { InventoryHttp } from "../inventory/Http.js"
import { InventoryRepo } from "../inventory/Repo.js"
import { MetricsHttp, recordHttpRequest } from "../metrics/Http.js"
import { DeprecationsHttp, PlansHttp } from "../planner/Http.js"
import { VmsHttp } from "../vms/Http.js"
import { FleetApi } from "./Api.js"
import { RunsHttp } from "../executor/Http.js"
import { NotReady } from "./Health.js"
import { idempotency, IdempotencyStore } from "./Idempotency.js"
import { ReadableDecodeErrors } from "./DecodeErrors.js"
import { bodyLimit, BodyLimitConfig } from "./Limits.js"
import { routesAt } from "./Routes.js"

export const HttpConfig = Config.all({
  // 0 asks the system for a free port (logged as "Listening on …").
  port: Config.integer("PORT").pipe(
    Config.validate({ message: "expected a port number from 0 to 65535", validation: (port) => port >= 0 && port <= 65_535 }),
    Config.withDefault(8080)
  ),
  host: Config.string("FLEET_HOST").pipe(Config.withDefault("127.0.0.1"))
})

const HealthHttp = HttpApiBuilder.group(FleetApi, "health", (handlers) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return handlers
      .handle("live", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        sql`select 1`.pipe(
          Effect.timeout("2 seconds"),
          Effect.as({ status: "ready" as const }),
          Effect.catchAll(() => Effect.fail(new NotReady({ message: "the database does not answer" })))
        ))
  }))

const statusNames: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  413: "PayloadTooLarge",
  415: "UnsupportedMediaType",
  429: "TooManyRequests",
  500: "InternalError",
  503: "Unavailable"
}

const errorBody = (
  status: number,
  request: HttpServerRequest.HttpServerRequest
): { readonly _tag: string; readonly message: string; readonly issues?: ReadonlyArray<never>; readonly resource?: string; readonly id?: string } => {
  switch (status) {
    case 400:
      // The shape of the API's own 400s (HttpApiDecodeError), so that every 400 reads the same.
      return { _tag: "HttpApiDecodeError", message: "the request could not be read: expected a JSON body matching the endpoint's schema", issues: [] }
    case 404: {
      // The shape of the API's own 404s (NotFound), so that a client reads it as one, not as a body it cannot decode.
      const endpoint = `${request.method} ${request.url.split("?")[0]!.slice(0, 200)}`
      return { _tag: "NotFound", message: `no such endpoint: ${endpoint} (see /openapi.json)`, resource: "endpoint", id: endpoint }
    }
    case 500:
      return { _tag: "InternalError", message: "internal error; it has been logged" }
    default:
      return { _tag: statusNames[status] ?? "Error", message: `request failed with status ${status}` }
  }
}

/**
 * Every error answer has a JSON body: routing and body-parsing failures, and defects, are
 * answered by the framework with an empty body; this gives them one (a defect's says nothing
 * about its cause, which the request log records), turns the router's 404 for a path served with
 * another method into a 405, adds a 401's challenge, and keeps the status sent for the request
 * log. It is the first pre-response handler of every request. (Set per request, not as the
 * server's initial value: that value would reach every fiber the layers' builder forks
 * afterwards, such as the bundled simulator's server, whose empty answers are deliberate.)
 */
const jsonErrorBody: HttpApp.PreResponseHandler = (request, response) =>
  Effect.map(FiberRef.get(sentStatus), (sentAs) => {
    const sent = bearerChallenge(
      response.status >= 400 && response.body._tag === "Empty"
        ? methodNotAllowed(request, response) ??
          HttpServerResponse.unsafeJson(errorBody(response.status, request), { status: response.status, headers: response.headers })
        : response
    )
    if (sentAs !== undefined) sentAs.status = sent.status
    return sent
  })

/**
 * Where the status a request was answered with is kept, as sent, for the request log and the
 * metrics: not the status the app's failure would give (a route not found fails the app; its
 * answer, a 404 or a 405, is made here).
 */
const sentStatus = FiberRef.unsafeMake<{ status?: number } | undefined>(undefined)

/** The router's 404 for a path fleet serves, asked with another method: a 405 that says which methods it takes (Allow). */
const methodNotAllowed = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse
): HttpServerResponse.HttpServerResponse | undefined => {
  if (response.status !== 404) return undefined
  const methods = [...new Set(routesAt(request.url).map((route) => route.method))]
  if (methods.length === 0 || methods.includes(request.method)) return undefined
  const path = request.url.split("?")[0]!.slice(0, 200)
  return HttpServerResponse.unsafeJson(
    { _tag: "MethodNotAllowed", message: `${request.method} is not served at ${path}: it takes ${methods.join(", ")}` },
    { status: 405, headers: { ...response.headers, allow: methods.join(", ") } }
  )
}

/** A 401 says which scheme it wants (RFC 6750), as HTTP clients and proxies expect of it. */
const bearerChallenge = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
  response.status === 401 ? HttpServerResponse.setHeader(response, "www-authenticate", 'Bearer realm="fleet"') : response

/**
 * The request log and the HTTP metrics, once the answer is sent: one line per request, at info,
 * with the method, URL, status and milliseconds taken, and the cause of a failure; and the request
 * counted and timed by method, route and status. (Effect's `HttpMiddleware.logger` made a log span
 * per request, a quarter of the runtime work of a simple read.)
 */
const observeRequests: HttpMiddleware.HttpMiddleware = (app) =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const started = performance.now()
    const sentAs: { status?: number } = {}
    return Effect.onExit(Effect.locally(app, sentStatus, sentAs), (exit) => {
      const [response, cause] = Exit.isSuccess(exit) ? [exit.value, Option.none()] : HttpServerError.causeResponseStripped(exit.cause)
      const ms = performance.now() - started
      const status = sentAs.status ?? response.status
      recordHttpRequest(request.method, request.url, status, ms / 1000)
      const fields = {
        "http.method": request.method,
        "http.url": request.url,
        "http.status": status,
        "http.ms": Math.round(ms * 10) / 10
      }
      return Option.isSome(cause) ? Effect.logInfo("Sent HTTP response", fields, cause.value) : Effect.logInfo("Sent HTTP response", fields)
    })
  })

/** The OpenAPI document generated from FleetApi at /openapi.json, and Swagger UI (bundled, no CDN) at /docs; both public. */
export const DocsLive = Layer.mergeAll(
  HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }),
  HttpApiSwagger.layer({ path: "/docs" })
)

/** The API's handlers, without a server: what tests and the server share. Needs an `Authentication` implementation. */
export const ApiLive = HttpApiBuilder.api(FleetApi).pipe(
  Layer.provide([HealthHttp, VmsHttp, InventoryHttp, AuditHttp, MetricsHttp, PlansHttp, DeprecationsHttp, RunsHttp]),
  Layer.provide([InventoryRepo.Default, AuditRepo.Default])
)

/**
 * What every request goes through around the API, outermost first: JSON bodies for every error,
 * the request log and metrics; and for a request with a body (POST, PUT, PATCH), the body limit,
 * idempotency of POSTs, the audit record of mutating requests (see README.md). A request without
 * one goes straight to the API: the three would only pass it on.
 */
export const httpPipeline = (maxBodyBytes: number) => (httpApp: HttpApp.Default) => {
  const withBody = bodyLimit(maxBodyBytes)(idempotency(auditMutations(httpApp)))
  const byMethod = Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, Effect.Effect.Error<typeof withBody>, Effect.Effect.Context<typeof withBody>>((fiber) =>
    HttpMethod.hasBody(Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest).method) ? withBody : httpApp
  )
  // Appended, not set around the request: the request's fiber ends with it.
  return Effect.zipRight(HttpApp.appendPreResponseHandler(jsonErrorBody), observeRequests(byMethod)) as HttpApp.Default
}

/**
 * The API served on whatever HttpServer is provided. No request span is made: fleet exports no
 * traces, and the span's attributes (the URL parsed, the headers redacted) would be built for
 * every request only to be dropped.
 */
export const ServeApi = Layer.unwrapEffect(
  Effect.map(BodyLimitConfig, (maxBodyBytes) => HttpApiBuilder.serve(httpPipeline(maxBodyBytes)))
).pipe(
  HttpMiddleware.withTracerDisabledWhen(() => true),
  HttpServer.withLogAddress,
  Layer.provide(DocsLive),
  Layer.provide(ReadableDecodeErrors),
  Layer.provide(ApiLive),
  Layer.provide([IdempotencyStore.Default, RequestRecords.Default])
)

/**
 * Node's HTTP server, answering what its parser refuses (a request line or headers over 16 KiB,
 * malformed HTTP) with a JSON body too, instead of Node's empty one.
 */
export const createFleetServer = (): Server => {
  const server = createServer()
  server.on("clientError", (error: Error & { readonly code?: string }, socket: Duplex) => {
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy()
      return
    }
    const [status, reason, tag] = error.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLarge"]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "Request Timeout", "RequestTimeout"]
      : [400, "Bad Request", "BadRequest"]
    const body = JSON.stringify({ _tag: tag, message: `the request could not be parsed as HTTP: ${reason.toLowerCase()}` })
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `connection: close\r\n\r\n${body}`
    )
  })
  return server
}

/** The API on a Node HTTP server at HttpConfig's host and port. */
export const HttpServerLive = Layer.unwrapEffect(
  Effect.map(HttpConfig, ({ host, port }) => ServeApi.pipe(Layer.provide(NodeHttpServer.layer(createFleetServer, { host, port }))))
)
