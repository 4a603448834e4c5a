import { HttpApi, HttpApiBuilder, type HttpApp, HttpServerError, HttpServerRequest } from "@effect/platform"
import { Effect, Exit } from "effect"
import { requireScope } from "../auth/Authorization.js"
import { FleetApi } from "../http/Api.js"
import { collectDatabaseGauges } from "./Collectors.js"
import { httpDuration, httpRequests, label } from "./Metrics.js"
import { renderRegistry } from "./Prometheus.js"

export const MetricsHttp = HttpApiBuilder.group(FleetApi, "metrics", (handlers) =>
  Effect.gen(function* () {
    const collect = yield* collectDatabaseGauges
    return handlers.handle("metrics", () =>
      Effect.gen(function* () {
        yield* requireScope("metrics:read")
        yield* collect
        return yield* renderRegistry
      }))
  }))

/** Routes outside FleetApi that are served too. */
const extraRoutes: ReadonlyArray<readonly [string, string]> = [["GET", "/openapi.json"], ["GET", "/docs"]]

/**
 * The route template a request matched (`/v1/vms/:id`), from FleetApi's endpoints, so that
 * metrics have one series per endpoint rather than per URL; `unmatched` for anything else.
 */
export const makeRouteMatcher = (): ((method: string, url: string) => string) => {
  const routes: Array<{ readonly method: string; readonly pattern: RegExp; readonly path: string }> = []
  const add = (method: string, path: string) =>
    routes.push({
      method,
      path,
      pattern: new RegExp(`^${path.split("/").map((part) => part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("/")}/?$`)
    })
  HttpApi.reflect(FleetApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => add(endpoint.method, endpoint.path)
  })
  for (const [method, path] of extraRoutes) add(method, path)
  return (method, url) => {
    const query = url.indexOf("?")
    const path = query === -1 ? url : url.slice(0, query)
    for (const route of routes) if (route.method === method && route.pattern.test(path)) return route.path
    for (const route of routes) if (route.pattern.test(path)) return route.path
    return "unmatched"
  }
}

/** Counts and times every request by method, route and status. */
export const httpMetrics = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> => {
  const routeOf = makeRouteMatcher()
  return Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const started = performance.now()
    const exit = yield* Effect.exit(app)
    const status = Exit.isSuccess(exit)
      ? exit.value.status
      : (yield* HttpServerError.causeResponse(exit.cause))[0].status
    const method = request.method
    const tags = [label("method", method), label("route", routeOf(method, request.url)), label("status", String(status))]
    httpRequests.unsafeUpdate(1, tags)
    httpDuration.unsafeUpdate((performance.now() - started) / 1000, tags)
    return yield* exit
  })
}
