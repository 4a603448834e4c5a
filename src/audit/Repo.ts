import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { likePattern } from "../auth/Authorization.js"
import { AuditEvent } from "./Domain.js"

export interface EventFilter {
  readonly application?: string | undefined
  readonly vm?: string | undefined
  readonly request?: string | undefined
  readonly run?: string | undefined
  readonly actor?: string | undefined
  readonly kind?: string | undefined
  readonly since?: Date | undefined
  readonly until?: Date | undefined
  /** Only events of applications matching these globs (an application-limited token); all when absent. */
  readonly applicationGlobs?: ReadonlyArray<string> | undefined
  /**
   * Leave out what only `admin` is shown: token administration (`token.*`) and the records of
   * requests (`http.request`), which name the token each request came with.
   */
  readonly withoutAdminEvents?: boolean | undefined
}

const Row = Schema.Struct({
  ...AuditEvent.fields,
  id: Schema.Union(Schema.String, Schema.BigIntFromSelf, Schema.Number).pipe(
    Schema.transform(Schema.String, { strict: true, decode: (id) => String(id), encode: (id) => id })
  ),
  at: Schema.DateFromSelf
})

/** Reads of the audit log (the `events` table), newest first, paged by id. */
export class AuditRepo extends Effect.Service<AuditRepo>()("fleet/AuditRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const list = (filter: EventFilter, before: Option.Option<bigint>, limit: number) =>
      Effect.gen(function* () {
        const clauses = [
          ...(filter.application === undefined ? [] : [sql`application = ${filter.application}`]),
          ...(filter.vm === undefined ? [] : [sql`vm_id = ${filter.vm}`]),
          ...(filter.request === undefined ? [] : [sql`request_id = ${filter.request}`]),
          ...(filter.run === undefined ? [] : [sql`run_id = ${filter.run}`]),
          ...(filter.actor === undefined ? [] : [sql`actor = ${filter.actor}`]),
          ...(filter.kind === undefined ? [] : [sql`kind = ${filter.kind}`]),
          ...(filter.since === undefined ? [] : [sql`at >= ${filter.since}`]),
          ...(filter.until === undefined ? [] : [sql`at < ${filter.until}`]),
          ...(filter.applicationGlobs === undefined
            ? []
            : [sql.or(filter.applicationGlobs.map((glob) => sql`application like ${likePattern(glob)}`))]),
          ...(filter.withoutAdminEvents ? [sql`kind not like 'token.%'`, sql`kind <> 'http.request'`] : []),
          ...(Option.isSome(before) ? [sql`id < ${before.value.toString()}::bigint`] : [])
        ]
        const rows = yield* sql`
          select id::text as id, at, actor, kind, application, request_id::text as request_id, vm_id::text as vm_id,
                 execution_id::text as execution_id, run_id::text as run_id, from_state, to_state, reason
          from events ${clauses.length > 0 ? sql`where ${sql.and(clauses)}` : sql``}
          order by events.id desc limit ${limit}`
        const decoded = yield* Schema.decodeUnknown(Schema.Array(Row))(rows)
        return decoded.map((row) => new AuditEvent(row))
      }).pipe(Effect.orDie)

    return { list } as const
  })
}) {}
