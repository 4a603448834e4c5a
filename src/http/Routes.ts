/**
 * Every route fleet serves, from FleetApi's definition (and the documents served beside it): what
 * the metrics label a request with, what a wrong method is told it may use, which endpoints take a
 * body other than JSON, and the scope each needs.
 */
import { HttpApi } from "@effect/platform"
import { Context, Option } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { RequiredScope, type Scope } from "../auth/Scopes.js"
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
  /** Whether it needs a token (the `Authentication` middleware). */
  readonly authenticated: boolean
  /** The scope its definition says a token needs (`RequiredScope`), if it says one. */
  readonly scope: Scope | undefined
}

/** A template's concrete paths: each `:param` one segment, a trailing slash allowed. */
const patternOf = (path: string): RegExp =>
  new RegExp(`^${path.split("/").map((part) => part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("/")}/?$`)

const route = (
  method: string,
  path: string,
  options: { readonly encodings?: ReadonlyArray<string>; readonly authenticated?: boolean; readonly scope?: Scope | undefined } = {}
): Route => ({
  method,
  path,
  pattern: patternOf(path),
  hasPayload: (options.encodings ?? []).length > 0,
  takesNonJson: (options.encodings ?? []).some((kind) => kind !== "Json"),
  authenticated: options.authenticated ?? false,
  scope: options.scope
})

export const routes: ReadonlyArray<Route> = (() => {
  const found: Array<Route> = [route("GET", "/openapi.json"), route("GET", "/docs")]
  HttpApi.reflect(FleetApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, mergedAnnotations, middleware, payloads }) =>
      found.push(route(endpoint.method, endpoint.path, {
        encodings: [...payloads.values()].map((payload) => payload.encoding.kind),
        authenticated: [...middleware].some((tag) => tag.key === Authentication.key),
        scope: Option.getOrUndefined(Context.getOption(mergedAnnotations, RequiredScope))
      }))
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

const byTemplate = new Map(routes.map((each) => [`${each.method} ${each.path}`, each]))

/** The scope a route (as the router has it: method and path template) needs, if its definition says one. */
export const scopeOf = (method: string, template: string): Scope | undefined => byTemplate.get(`${method} ${template}`)?.scope
