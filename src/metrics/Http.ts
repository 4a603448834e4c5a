import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { requireScope } from "../auth/Authorization.js"
import { FleetApi } from "../http/Api.js"
import { routeOf, routesAt } from "../http/Routes.js"
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

/**
 * The route template a request matched (`/v1/vms/:id`), so that metrics have one series per
 * endpoint rather than per URL: a wrong method is counted at the route of its path (its 405),
 * anything else as `unmatched`.
 */
const routeLabel = (method: string, url: string): string => (routeOf(method, url) ?? routesAt(url)[0])?.path ?? "unmatched"

/** Counts and times a request by method, route and status; `seconds` is the time it took. */
export const recordHttpRequest = (method: string, url: string, status: number, seconds: number): void => {
  const tags = labelSet(["method", method], ["route", routeLabel(method, url)], ["status", String(status)])
  httpRequests.unsafeUpdate(1, tags)
  httpDuration.unsafeUpdate(seconds, tags)
}
