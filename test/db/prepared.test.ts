import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Redacted } from "effect"
import { layerFromUrl } from "../../src/db/Database.js"
import { freshDatabase } from "../support/Database.js"

/** An SqlClient on one connection, so that its session's prepared statements can be read. */
const oneConnection = (url: string, prepare: boolean) =>
  Layer.build(layerFromUrl(Redacted.make(url), 1, prepare)).pipe(Effect.map((context) => context.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient))

const preparedNames = (sql: SqlClient.SqlClient) =>
  sql<{ name: string }>`select name from pg_prepared_statements order by name`.pipe(Effect.map((rows) => rows.map((row) => row.name)))

describe("prepared statements", () => {
  it.scopedLive("a parameterised statement is prepared once per connection and reused; texts without parameters are sent as they are", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const sql = yield* oneConnection(url, true)
      const lookUp = (id: number) => sql<{ id: number; doubled: number }>`select ${id}::int as id, ${id}::int * 2 as doubled`
      expect(yield* lookUp(1)).toEqual([{ id: 1, doubled: 2 }])
      expect(yield* lookUp(21)).toEqual([{ id: 21, doubled: 42 }])
      const names = yield* preparedNames(sql)
      // One statement for the lookup, run twice (the listing has no parameter: it is not prepared).
      expect(names).toHaveLength(1)
      expect(names[0]).toMatch(/^fleet_[0-9a-f]{24}$/)
      // A text whose number of parameters follows the data (an `in` list) is not kept: one per length would pile up.
      const many = Array.from({ length: 40 }, (_, index) => index)
      expect(yield* sql<{ n: number }>`select count(*)::int as n from generate_series(0, 100) as g where g in ${sql.in(many)}`).toEqual([{ n: 40 }])
      expect(yield* preparedNames(sql)).toEqual(names)
      // Several statements in one text (as migrations are) cannot be prepared, and are not.
      const [, second] = (yield* sql.unsafe("select 1 as one; select 2 as two")) as unknown as [unknown, ReadonlyArray<{ two: number }>]
      expect(second).toEqual([{ two: 2 }])
    }))

  it.scopedLive("after a migration changes a table under a prepared select *, the statement is prepared afresh", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const sql = yield* oneConnection(url, true)
      yield* sql`create table gadgets (id int primary key, name text)`
      yield* sql`insert into gadgets values (1, 'one')`
      const byId = (id: number) => sql<Record<string, unknown>>`select * from gadgets where id = ${id}`
      expect(yield* byId(1)).toEqual([{ id: 1, name: "one" }])
      yield* sql`alter table gadgets add column colour text default 'red'`
      // PostgreSQL refuses the statement prepared for the old row type at most once; then it is prepared again.
      const first = yield* Effect.either(byId(1))
      const rows = Either.isRight(first) ? first.right : yield* byId(1)
      expect(rows).toEqual([{ id: 1, name: "one", colour: "red" }])
      expect(yield* byId(1)).toEqual([{ id: 1, name: "one", colour: "red" }])
    }))

  it.scopedLive("with DATABASE_PREPARE=false nothing is prepared", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const sql = yield* oneConnection(url, false)
      expect(yield* sql<{ n: number }>`select ${5}::int as n`).toEqual([{ n: 5 }])
      expect(yield* preparedNames(sql)).toEqual([])
    }))
})
