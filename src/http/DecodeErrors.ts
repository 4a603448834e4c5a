import { HttpApiBuilder, HttpApiError, type HttpApp, HttpMethod, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { readableIssues, summaryOf } from "../common/Errors.js"
import { FleetApi } from "./Api.js"
import { routeOf } from "./Routes.js"

/**
 * The API's own 400s (a path, query or body its schema refuses), made readable before they are
 * encoded: the issues as `readableIssues` gives them, and a one-line message naming each, as
 * fleet's InvalidInput has, instead of the schema's tree drawn out in full.
 */
export const readableDecodeError = (error: HttpApiError.HttpApiDecodeError): HttpApiError.HttpApiDecodeError => {
  const issues = readableIssues(error.issues)
  return new HttpApiError.HttpApiDecodeError({ issues, message: summaryOf(issues) })
}

/**
 * A body in a content type the platform does not read as JSON (`text/plain`, `text/json`, or one
 * it does not know) is handed to a JSON endpoint's schema as a string or as bytes, which it
 * refuses, quoting the body back ("Expected CreateVmRequest, actual \"{…}\""). That is the content
 * type's fault, and said so: 415. (Forms and multipart bodies are refused before, see ./Limits.ts.)
 */
const wrongContentType = (request: HttpServerRequest.HttpServerRequest) => {
  const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
  if (contentType === "" || contentType.includes("application/json") || !HttpMethod.hasBody(request.method)) return undefined
  // Only a body that was to be JSON: an endpoint without one is told what is wrong with its path or query.
  const route = routeOf(request.method, request.url)
  if (route === undefined || !route.hasPayload || route.takesNonJson) return undefined
  return HttpServerResponse.unsafeJson(
    { _tag: "UnsupportedMediaType", message: `Content-Type ${contentType} is not read as JSON: send JSON with Content-Type: application/json` },
    { status: 415 }
  )
}

/**
 * The app's type says it cannot fail, but the endpoints' errors travel through it to be encoded
 * after this middleware: the API's decode errors among them, the only ones it changes.
 */
export const ReadableDecodeErrors = HttpApiBuilder.middleware(FleetApi, (app) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.catchIf(
      app as HttpApp.Default<HttpApiError.HttpApiDecodeError>,
      (error) => error instanceof HttpApiError.HttpApiDecodeError,
      (error) => {
        const refused = wrongContentType(request)
        return refused === undefined ? Effect.fail(readableDecodeError(error)) : Effect.succeed(refused)
      }
    )))
