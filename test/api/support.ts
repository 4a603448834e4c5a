import { SqlClient } from "@effect/sql"
import { Effect, Redacted } from "effect"
import { layerFromUrl } from "../../src/db/Database.js"
import type { TestFleet } from "../support/Fleet.js"

export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown
}

export interface RequestOptions {
  readonly body?: string | undefined
  /** A token to send as `Authorization: Bearer …`; `null` sends no Authorization header. */
  readonly token?: string | null
  readonly headers?: Record<string, string>
  /** Give up after this many milliseconds (status 0 then). */
  readonly timeoutMs?: number
}

/** One request over the fleet's real socket, with fetch (keep-alive). */
export const request = (fleet: TestFleet, method: string, path: string, options: RequestOptions = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const headers: Record<string, string> = { ...options.headers }
    const token = options.token === undefined ? fleet.token : options.token
    if (token !== null) headers["authorization"] = `Bearer ${token}`
    if (options.body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json"
    let response: Response
    let text: string
    try {
      response = await fetch(`${fleet.baseUrl}${path}`, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(options.timeoutMs) })
      })
      text = await response.text()
    } catch (error) {
      if (options.timeoutMs === undefined) throw error
      return { status: 0, headers: new Headers(), text: String(error), json: undefined }
    }
    let json: unknown = undefined
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  })

export const field = (answer: Answer, name: string): unknown =>
  typeof answer.json === "object" && answer.json !== null ? (answer.json as Record<string, unknown>)[name] : undefined

/** The fields of a VM request that the demo catalog accepts, with `overrides`. */
export const vmRequestFields = <Overrides extends Record<string, unknown>>(overrides?: Overrides) => ({
  application: "payments-api",
  environment: "production",
  stack: "java",
  osVersion: "ubuntu-24.04",
  machineType: "n2-standard-4",
  count: 1,
  ...overrides
})

/** The same as a JSON body. */
export const vmRequestBody = (overrides: Record<string, unknown> = {}) => JSON.stringify(vmRequestFields(overrides))

/** Runs SQL against the fleet's database. */
export const withSql = <A>(fleet: TestFleet, use: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* use(sql)
  }).pipe(Effect.provide(layerFromUrl(Redacted.make(fleet.databaseUrl), 1)), Effect.scoped, Effect.orDie)

/** Row counts of every table of the database (but the migrations'), by table name. */
export const tableCounts = (fleet: TestFleet) =>
  withSql(fleet, (sql) =>
    Effect.gen(function* () {
      const tables = yield* sql<{ name: string }>`
        select table_name as name from information_schema.tables
        where table_schema = 'public' and table_type = 'BASE TABLE' and table_name not like '%migrations%' order by table_name`
      const counts: Record<string, number> = {}
      for (const { name } of tables) {
        const [row] = yield* sql.unsafe<{ count: number }>(`select count(*)::int as count from "${name}"`)
        counts[name] = row!.count
      }
      return counts
    }))
