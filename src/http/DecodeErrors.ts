import { HttpApiBuilder, HttpApiError, type HttpApp } from "@effect/platform"
import { Effect } from "effect"
import { readableIssues, summaryOf } from "../common/Errors.js"
import { FleetApi } from "./Api.js"

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
 * The app's type says it cannot fail, but the endpoints' errors travel through it to be encoded
 * after this middleware: the API's decode errors among them, the only ones it changes.
 */
export const ReadableDecodeErrors = HttpApiBuilder.middleware(FleetApi, (app) =>
  Effect.mapError(app as HttpApp.Default<HttpApiError.HttpApiDecodeError>, (error) =>
    error instanceof HttpApiError.HttpApiDecodeError ? readableDecodeError(error) : error))
