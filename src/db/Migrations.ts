import { FileSystem } from "@effect/platform"
import { fromRoot } from "../common/Paths.js"
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"

export const migrationsDirectory = fromRoot("migrations")

/** Plain SQL migrations: `migrations/NNNN_name.sql`, applied in order of their number. */
export const fromSqlFiles = (directory: string): Migrator.Loader<FileSystem.FileSystem | SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const sql = yield* SqlClient.SqlClient
    const files = yield* fs.readDirectory(directory)
    const migrations: Array<Migrator.ResolvedMigration> = []
    for (const file of files) {
      const match = /^(\d+)_([^.]+)\.sql$/.exec(file)
      if (match === null) continue
      const text = yield* fs.readFileString(`${directory}/${file}`)
      migrations.push([Number(match[1]), match[2]!, Effect.succeed(sql.unsafe(text))])
    }
    return migrations.sort(([a], [b]) => a - b)
  }).pipe(
    Effect.mapError((error) => new Migrator.MigrationError({ reason: "failed", message: `Cannot read migrations: ${error.message}` }))
  )

const run = Migrator.make({})

/** Applies every migration not applied yet; returns the ones applied now. */
export const migrate = Effect.gen(function* () {
  const applied = yield* run({ loader: fromSqlFiles(migrationsDirectory) })
  for (const [id, name] of applied) yield* Effect.logInfo(`Applied migration ${id}_${name}`)
  return applied
})
