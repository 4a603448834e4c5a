import { NodeFileSystem } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Logger, LogLevel, Redacted, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { layerFromUrl } from "../../src/db/Database.js"
import { migrate } from "../../src/db/Migrations.js"

/**
 * The server tests run against: TEST_DATABASE_URL, else DATABASE_URL, else a PostgreSQL container
 * started with testcontainers when a Docker engine answers. Each test file gets its own database.
 */
const serverUrl: Effect.Effect<string, never, Scope.Scope> = Effect.gen(function* () {
  const fromEnv = process.env["TEST_DATABASE_URL"] ?? process.env["DATABASE_URL"]
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const container = yield* Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const { PostgreSqlContainer } = await import("@testcontainers/postgresql")
      return new PostgreSqlContainer("postgres:15-alpine").start()
    }),
    (container) => Effect.promise(() => container.stop())
  ).pipe(
    Effect.orDieWith((error) =>
      new Error(
        "No database for the tests: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres), " +
          `or make a Docker engine reachable for testcontainers (${String(error)})`
      )
    )
  )
  return container.getConnectionUri()
})

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Creates a fresh, migrated database and drops it when the scope closes. */
export const freshDatabase: Effect.Effect<{ readonly url: string; readonly name: string }, never, Scope.Scope> = Effect.gen(function* () {
  const server = yield* serverUrl
  const name = `fleet_test_${randomBytes(6).toString("hex")}`
  const admin = (statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* statement(sql)
    }).pipe(Effect.provide(layerFromUrl(Redacted.make(server), 1)), Effect.scoped, Effect.orDie)
  yield* Effect.acquireRelease(
    admin((sql) => sql.unsafe(`create database ${name}`)),
    () => admin((sql) => sql.unsafe(`drop database if exists ${name} with (force)`))
  )
  const url = withDatabase(server, name)
  yield* migrate.pipe(
    Effect.provide(Layer.mergeAll(layerFromUrl(Redacted.make(url), 1), NodeFileSystem.layer, Logger.minimumLogLevel(LogLevel.Warning))),
    Effect.scoped,
    Effect.orDie
  )
  return { url, name }
})

/** A SqlClient on a fresh, migrated database of its own. */
export const TestDatabase: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient> = Layer.unwrapScoped(
  Effect.map(freshDatabase, ({ url }) => layerFromUrl(Redacted.make(url), 5))
).pipe(Layer.orDie)
