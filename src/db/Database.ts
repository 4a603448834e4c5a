import { PgClient } from "@effect/sql-pg"
import { SqlError, type SqlClient } from "@effect/sql"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Redacted, String } from "effect"
import { mkdirSync } from "node:fs"
import pg from "pg"
import { resolve } from "node:path"
import { ModeConfig } from "../config/Mode.js"
import { remembered } from "../common/Remembered.js"
import { ensureEmbeddedDatabaseFree } from "./Embedded.js"
import { preparingClient } from "./PreparedStatements.js"

/**
 * Column names are snake_case in SQL and camelCase in TypeScript (remembered: every row of every
 * result goes through it); JSON values are left as they are.
 */
const naming = {
  transformResultNames: remembered(String.snakeToCamel),
  transformQueryNames: remembered(String.camelToSnake),
  transformJson: false
} as const

/**
 * PostgreSQL at `url`, through a pool of `maxConnections`. With `prepare` (the default), each
 * parameterised statement is prepared once per connection (see PreparedStatements.ts); without it
 * (`DATABASE_PREPARE=false`, for a pooler that does not keep sessions), every call is parsed anew.
 */
export const layerFromUrl = (
  url: Redacted.Redacted,
  maxConnections = 10,
  prepare = true
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> =>
  PgClient.layerFromPool({
    acquire: Effect.gen(function* () {
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const pool = new pg.Pool({
            connectionString: Redacted.value(url),
            max: maxConnections,
            application_name: "fleet",
            ...(prepare ? { Client: preparingClient() } : {})
          })
          // A connection that breaks is dropped by the pool; the next query gets a new one.
          pool.on("error", () => {})
          return pool
        }),
        // A connection that does not end must not hold up the shutdown for long.
        (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
      )
      // Outside the acquisition, so that the timeout can interrupt it; the pool is ended either way.
      yield* Effect.tryPromise({
        try: () => pool.query("select 1"),
        catch: (cause) => new SqlError.SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(5),
          onTimeout: () => new SqlError.SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        })
      )
      return pool
    }),
    applicationName: "fleet",
    ...naming
  })

/**
 * An embedded PostgreSQL (PGlite) kept in `dataDir`, served on a loopback port over the wire
 * protocol so that the same `@effect/sql-pg` client is used as in production. PGlite runs one
 * query at a time, so the pool has a single connection.
 */
export const layerEmbedded = (dataDir: string): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const directory = resolve(dataDir, "pglite")
      yield* ensureEmbeddedDatabaseFree(directory)
      mkdirSync(directory, { recursive: true })
      const db = yield* Effect.acquireRelease(
        Effect.promise(() => PGlite.create(directory)),
        (db) => Effect.promise(() => db.close())
      )
      const server = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
          await server.start()
          return server
        }),
        (server) => Effect.promise(() => server.stop())
      )
      yield* Effect.logWarning(`Using the embedded database in ${directory} (set DATABASE_URL to use PostgreSQL)`)
      // Not prepared: PGlite's one session outlives the pool's connections, and a new connection
      // would prepare its statements again under names the session already has.
      return layerFromUrl(Redacted.make(`postgres://postgres@${server.getServerConn()}/postgres`), 1, false)
    })
  )

export const DatabaseConfig = Config.all({
  // Checked without being quoted: it may hold a password.
  url: Config.option(Config.string("DATABASE_URL").pipe(
    Config.mapOrFail((url) =>
      /^postgres(ql)?:\/\/\S+$/.test(url)
        ? Either.right(Redacted.make(url))
        : Either.left(ConfigError.InvalidData([], "expected a PostgreSQL URL such as postgres://user@host:5432/fleet"))
    )
  )),
  poolSize: Config.integer("DATABASE_POOL_SIZE").pipe(
    Config.validate({ message: "expected at least 1 connection", validation: (size) => size >= 1 }),
    Config.withDefault(10)
  ),
  prepare: Config.boolean("DATABASE_PREPARE").pipe(Config.withDefault(true)),
  dataDir: Config.string("FLEET_DATA_DIR").pipe(Config.withDefault(".fleet")),
  mode: ModeConfig
})

/** PostgreSQL at DATABASE_URL; without it, the embedded database in development, and an error in production. */
export const DatabaseLive: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* DatabaseConfig
    if (Option.isSome(config.url)) return layerFromUrl(config.url.value, config.poolSize, config.prepare)
    if (config.mode === "production") {
      return yield* Effect.fail(
        ConfigError.MissingData(["DATABASE_URL"], "required when FLEET_MODE=production")
      )
    }
    return layerEmbedded(config.dataDir)
  })
)
