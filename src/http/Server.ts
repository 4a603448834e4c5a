import { HttpApiBuilder, HttpApp, HttpMiddleware, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { InventoryHttp } from "../inventory/Http.js"
import { InventoryRepo } from "../inventory/Repo.js"
import { VmsHttp } from "../vms/Http.js"
import { FleetApi } from "./Api.js"
import { NotReady } from "./Health.js"

export const HttpConfig = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(8080)),
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

const errorBody = (status: number): { readonly _tag: string; readonly message: string } => {
  switch (status) {
    case 400:
      return { _tag: "BadRequest", message: "the request could not be read: expected a JSON body matching the endpoint's schema" }
    case 404:
      return { _tag: "NotFound", message: "no such endpoint" }
    case 500:
      return { _tag: "InternalError", message: "internal error; it has been logged" }
    default:
      return { _tag: statusNames[status] ?? "Error", message: `request failed with status ${status}` }
  }
}

/**
 * Every error answer has a JSON body: routing and body-parsing failures, and defects, are
 * answered by the framework with an empty body; this gives them one (a defect's says nothing
 * about its cause, which the request log records).
 */
export const jsonErrors = HttpMiddleware.make((app) =>
  HttpApp.withPreResponseHandler(app, (_request, response) =>
    Effect.succeed(
      response.status >= 400 && response.body._tag === "Empty"
        ? HttpServerResponse.unsafeJson(errorBody(response.status), { status: response.status, headers: response.headers })
        : response
    ))
)

/** The API's handlers, without a server: what tests and the server share. */
export const ApiLive = HttpApiBuilder.api(FleetApi).pipe(
  Layer.provide([HealthHttp, VmsHttp, InventoryHttp]),
  Layer.provide(InventoryRepo.Default)
)

/** The API served on whatever HttpServer is provided. */
export const ServeApi = HttpApiBuilder.serve((httpApp) => jsonErrors(HttpMiddleware.logger(httpApp) as HttpApp.Default)).pipe(
  HttpServer.withLogAddress,
  Layer.provide(ApiLive)
)

/** The API on a Node HTTP server at HttpConfig's host and port. */
export const HttpServerLive = Layer.unwrapEffect(
  Effect.map(HttpConfig, ({ host, port }) => ServeApi.pipe(Layer.provide(NodeHttpServer.layer(createServer, { host, port }))))
)
