import { HttpApi, HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { requireScope } from "../auth/Authorization.js"
import { FleetApi } from "../http/Api.js"
import { collectDatabaseGauges } from "./Collectors.js"
import { httpDuration, httpRequests, labelSet } from "./Metrics.js"
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
const makeRouteMatcher = (): ((method: string, url: string) => string) => {
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
  const byMethod = new Map<string, typeof routes>()
  for (const route of routes) byMethod.set(route.method, [...(byMethod.get(route.method) ?? []), route])
  return (method, url) => {
    const query = url.indexOf("?")
    const path = query === -1 ? url : url.slice(0, query)
    for (const route of byMethod.get(method) ?? []) if (route.pattern.test(path)) return route.path
    for (const route of routes) if (route.pattern.test(path)) return route.path
    return "unmatched"
  }
}

/** Counts and times a request by method, route and status; `seconds` is the time it took. */
export const makeHttpRequestRecorder = (): ((method: string, url: string, status: number, seconds: number) => void) => {
  const routeOf = makeRouteMatcher()
  return (method, url, status, seconds) => {
    const tags = labelSet(["method", method], ["route", routeOf(method, url)], ["status", String(status)])
    httpRequests.unsafeUpdate(1, tags)
    httpDuration.unsafeUpdate(seconds, tags)
  }
}
