import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { HttpClientError } from "@effect/platform"
import { ServeError } from "@effect/platform/HttpServerError"
import { SqlError } from "@effect/sql"
import { Config, ConfigError, Effect, Option, ParseResult, Redacted, Schema } from "effect"
import { Unauthorized } from "../auth/Errors.js"
import { FleetClient } from "../client/Client.js"
import { describeIssue, InvalidInput, invalidInputFromParseError, NotFound, summaryOf } from "../common/Errors.js"
import { pageLimitExpected } from "../common/QueryParams.js"
import { settingProblems } from "../config/Settings.js"
import { EmbeddedDatabaseBusy } from "../db/Embedded.js"

/** `--url` / FLEET_URL and `--token` / FLEET_TOKEN: how CLI commands reach a running fleet. */
/**
 * An id given on the command line, as `schema` reads it; otherwise refused, naming it, with where
 * to find one and what was given: `plan id: expected a plan id (a UUID, as fleet plans list shows), not x`.
 */
export const decodeId = <A>(schema: Schema.Schema<A, string>, value: string, what: string, shownBy: string) =>
  Schema.decodeUnknown(schema)(value).pipe(
    Effect.mapError(() => InvalidInput.one(what, `expected a ${what} (a UUID, as ${shownBy} shows), not ${value}`))
  )

export const connectionOptions = {
  url: Options.text("url").pipe(
    Options.withDescription("fleet's base URL (env FLEET_URL)"),
    Options.withFallbackConfig(Config.string("FLEET_URL")),
    Options.withDefault("http://127.0.0.1:8080")
  ),
  token: Options.redacted("token").pipe(
    Options.withDescription("API token (env FLEET_TOKEN)"),
    Options.withFallbackConfig(Config.redacted("FLEET_TOKEN")),
    Options.optional
  )
}

/**
 * The client of the fleet at `url`. Refused before anything is asked: a URL that is not one, and
 * no token (every endpoint the CLI calls wants one: fleet would answer 401 as to a wrong one).
 */
export const connect = (options: { readonly url: string; readonly token: Option.Option<Redacted.Redacted<string>> }) =>
  !/^https?:\/\/[^\s/]+/.test(options.url)
    ? Effect.fail(InvalidInput.one("url", `expected fleet's base URL such as http://127.0.0.1:8080 (--url or FLEET_URL), not ${options.url}`))
    : !Option.exists(options.token, (token) => Redacted.value(token).trim() !== "")
    ? Effect.fail(InvalidInput.one("token", "no API token: set FLEET_TOKEN (or --token); embedded mode prints one at every start, fleet tokens create makes one"))
    : FleetClient.make({ baseUrl: options.url, token: Option.getOrUndefined(options.token) })

/** The typed client of a running fleet, as `connect` gives it. */
export type Client = Effect.Effect.Success<ReturnType<typeof connect>>

/**
 * `--limit`: a page size, from 1 to what the API takes (`max`), refused with the reason before
 * anything is asked (a limit the API would refuse, or one the database would take as none).
 */
export const limitOption = (defaultLimit: number, max: number) =>
  Options.integer("limit").pipe(
    Options.withDefault(defaultLimit),
    Options.mapEffect((limit) =>
      limit >= 1 && limit <= max
        ? Effect.succeed(limit)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--limit ${limit}: ${pageLimitExpected(max)}`)))
    ),
    Options.withDescription(`at most this many, newest first (1 to ${max})`)
  )

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print the answer as JSON instead of text for people"))

/**
 * What to do about a failure to talk to fleet at all: the server is not there (or the URL is not
 * one), or it does not take the token. The API's own words are for an HTTP client; these name the
 * CLI's options.
 */
const connectionAdvice = (error: unknown): string | undefined => {
  if (error instanceof HttpClientError.RequestError) {
    const cause = error.cause instanceof Error ? (error.cause.cause instanceof Error ? error.cause.cause.message : error.cause.message) : ""
    return `cannot reach fleet at ${error.request.url}${cause === "" ? "" : ` (${cause})`}: is it running, and is --url (FLEET_URL) right?`
  }
  const noEndpoint = (endpoint: string) =>
    `fleet has no endpoint ${endpoint}: is --url (FLEET_URL) fleet's base URL, such as http://127.0.0.1:8080, without a path?`
  if (error instanceof NotFound && error.resource === "endpoint") return noEndpoint(error.id)
  // An answer the typed client cannot read: not fleet's API at that URL (a path prefix, a proxy's page).
  if (error instanceof HttpClientError.ResponseError) {
    const endpoint = `${error.request.method} ${new URL(error.request.url).pathname}`
    const { status } = error.response
    return status === 404
      ? noEndpoint(endpoint)
      : status >= 500
      ? `fleet answered ${endpoint} with ${status}: a fault on its side, which its log explains; try again, or tell whoever runs it`
      : `${endpoint} was answered ${status} with something the CLI cannot read: is --url (FLEET_URL) fleet's base URL?`
  }
  if (error instanceof Unauthorized) {
    return "fleet refused the API token: set FLEET_TOKEN (or --token) to a token that is valid " +
      "(embedded mode prints one at every start; fleet tokens create makes one)"
  }
  return undefined
}

const causeMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/**
 * A failure said for a person, a line per problem, where fleet knows what it means: every issue of
 * an InvalidInput (with its line and column where it has one; after the input they are in, a file,
 * when `InvalidInput.in` said one), every bad or missing setting, a port taken, a database that
 * does not answer or is busy, fleet not reachable or refusing the token. Undefined for any other.
 */
export const failureLines = (failure: unknown): ReadonlyArray<string> | undefined => {
  // Input the typed client refused to send (a filter too long, say) has a field to name: its problems,
  // as the API would list them. An answer it could not read has none (an HTML page where JSON was due).
  const parsed = ParseResult.isParseError(failure) ? invalidInputFromParseError(failure) : undefined
  if (parsed !== undefined && parsed.issues.some((issue) => issue.path.length === 0)) {
    return [`fleet's answer could not be read (${parsed.message}): is --url (FLEET_URL) fleet's base URL, and fleet as new as this CLI?`]
  }
  const error = parsed ?? failure
  if (error instanceof InvalidInput && error.issues.length > 0) {
    const { issues, message } = error
    // `in(source)` put the input in front of the issues' summary: said again before them.
    const summary = summaryOf(issues)
    const where = message.length > summary.length && message.endsWith(`: ${summary}`) ? message.slice(0, message.length - summary.length) : ""
    return issues.length === 1
      ? [`${where}${describeIssue(issues[0]!)}`]
      : [`${where}${issues.length} problems`, ...issues.map((issue) => `  - ${describeIssue(issue)}`)]
  }
  if (ConfigError.isConfigError(error)) {
    return ["fleet's settings (environment variables) have problems", ...settingProblems(error).map((problem) => `  - ${problem}`)]
  }
  if (error instanceof ServeError) return [`fleet could not start its HTTP server: ${causeMessage(error.cause)} (PORT, FLEET_HOST)`]
  if (error instanceof SqlError.SqlError) return [`fleet could not use its database: ${error.message}: ${causeMessage(error.cause)}`]
  if (error instanceof EmbeddedDatabaseBusy) return [error.message]
  const advice = connectionAdvice(error)
  return advice === undefined ? undefined : [advice]
}

const printFailure = (lines: ReadonlyArray<string>) =>
  Effect.sync(() => {
    process.stderr.write(`error: ${lines.join("\n")}\n`)
    process.exitCode = 1
  })

/** Exits non-zero with the problem on stderr: its lines (`failureLines`), or else the error's message. */
export const explainFailure = <A, R>(effect: Effect.Effect<A, unknown, R>) =>
  effect.pipe(
    Effect.catchAll((failure) =>
      printFailure(failureLines(failure) ?? [typeof failure === "object" && failure !== null && "message" in failure ? String(failure.message) : String(failure)])
    )
  )

/**
 * For the long-running commands (`serve`, `proctor-sim`, `migrate`): a failure fleet can explain is
 * said in lines on stderr, with exit status 1 (its stack is of no use to whoever starts it); any
 * other fails as before, with its cause logged.
 */
export const explainStart = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.catchAll((error) => {
      const lines = failureLines(error)
      return lines === undefined ? Effect.fail(error) : printFailure(lines)
    })
  )
