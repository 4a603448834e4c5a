/**
 * Every route fleet serves, from FleetApi's definition (and the documents served beside it): what
 * the metrics label a request with, what a wrong method is told it may use, and which endpoints
 * take a body other than JSON.
 */
import { HttpApi } from "@effect/platform"
import { FleetApi } from "./Api.js"

export interface Route {
  readonly method: string
  /** The template, as FleetApi has it: `/v1/vms/:id`. */
  readonly path: string
  readonly pattern: RegExp
  /** Whether it takes a body at all. */
  readonly hasPayload: boolean
  /** Whether its body may be other than JSON (a recycle plan's YAML). */
  readonly takesNonJson: boolean
}

/** A template's concrete paths: each `:param` one segment, a trailing slash allowed. */
const patternOf = (path: string): RegExp =>
  new RegExp(`^${path.split("/").map((part) => part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("/")}/?$`)

const route = (method: string, path: string, encodings: ReadonlyArray<string> = []): Route => ({
  method,
  path,
  pattern: patternOf(path),
  hasPayload: encodings.length > 0,
  takesNonJson: encodings.some((kind) => kind !== "Json")
})

export const routes: ReadonlyArray<Route> = (() => {
  const found: Array<Route> = [route("GET", "/openapi.json"), route("GET", "/docs")]
  HttpApi.reflect(FleetApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, payloads }) => found.push(route(endpoint.method, endpoint.path, [...payloads.values()].map((payload) => payload.encoding.kind)))
  })
  return found
})()

/** The path of a URL, without its query. */
const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const byMethod = new Map<string, Array<Route>>()
for (const each of routes) byMethod.set(each.method, [...(byMethod.get(each.method) ?? []), each])

/** The route a request is for, if fleet serves its method at its path. (Every request is labelled with it: only its method's routes are tried.) */
export const routeOf = (method: string, url: string): Route | undefined => {
  const path = pathOf(url)
  return byMethod.get(method)?.find((each) => each.pattern.test(path))
}

/** The routes at a URL's path, whatever their method. */
export const routesAt = (url: string): ReadonlyArray<Route> => {
  const path = pathOf(url)
  return routes.filter((each) => each.pattern.test(path))
}
