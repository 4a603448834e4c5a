import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestDatabase } from "./support/Database.js"

layer(TestDatabase)("database", (it) => {
  it.effect("is migrated: every table exists and the migration is recorded", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tables = yield* sql<{ tableName: string }>`
        select table_name from information_schema.tables where table_schema = 'public' order by table_name`
      expect(tables.map((row) => row.tableName)).toEqual(
        expect.arrayContaining(["effect_sql_migrations", "events", "executions", "vm_requests", "vms"])
      )
      const applied = yield* sql<{ migrationId: number }>`select migration_id from effect_sql_migrations`
      expect(applied.map((row) => row.migrationId)).toContain(1)
    }))
})
