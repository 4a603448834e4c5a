import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Effect, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { layerFromUrl } from "../../src/db/Database.js"
import { plansDirectory } from "../../src/planner/Spec.js"
import type { TestFleet } from "../support/Fleet.js"

export interface Answer {
  readonly status: number
  readonly contentType: string
  readonly headers: Headers
  readonly text: string
  /** The body parsed as JSON, when it is JSON. */
  readonly json: Record<string, unknown>
}

/** One request over the fleet's real socket, with the admin token unless another (or none: null) is given. */
export const call = (
  fleet: TestFleet,
  method: string,
  path: string,
  options: { readonly body?: string; readonly contentType?: string; readonly token?: string | null; readonly headers?: Record<string, string> } = {}
) =>
  Effect.promise(async (): Promise<Answer> => {
    const headers: Record<string, string> = { ...options.headers }
    const token = options.token === undefined ? fleet.token : options.token
    if (token !== null) headers["authorization"] = `Bearer ${token}`
    if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/yaml"
    const response = await fetch(`${fleet.baseUrl}${path}`, { method, headers, ...(options.body === undefined ? {} : { body: options.body }) })
    const text = await response.text()
    let json: Record<string, unknown> = {}
    try {
      json = JSON.parse(text) as Record<string, unknown>
    } catch {
      // not JSON: a text report
    }
    return { status: response.status, contentType: response.headers.get("content-type") ?? "", headers: response.headers, text, json }
  })

/** The text of a shipped example plan. */
export const example = (file: string): string => readFileSync(join(plansDirectory, file), "utf8")

/** Runs SQL on a database by URL. */
export const onDatabase = <A, E>(url: string, effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  effect.pipe(Effect.provide(layerFromUrl(Redacted.make(url), 1)), Effect.scoped, Effect.orDie)

/**
 * Every row of the tables the planner could write, as text, to show that something wrote nothing.
 * Events count without the API's audit records (`http.request`: who called, written for every
 * accepted POST or PUT, dry runs included).
 */
export const tableContents = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [plans, policies, vms, events] = yield* Effect.all([
    sql`select coalesce(string_agg(t::text, E'\\n' order by t::text), '') as rows from plans t`,
    sql`select coalesce(string_agg(t::text, E'\\n' order by t::text), '') as rows from deprecation_policies t`,
    sql`select coalesce(string_agg(t::text, E'\\n' order by t::text), '') as rows from vms t`,
    sql`select count(*)::int as rows from events where kind <> 'http.request'`
  ])
  return { plans: plans[0]!["rows"], policies: policies[0]!["rows"], vms: vms[0]!["rows"], events: events[0]!["rows"] }
})
