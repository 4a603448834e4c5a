/**
 * What the two floors of `npm run bench:http` (bench/http-floor.ts, bench/http-floor-router.ts) do
 * alike through `@effect/sql`: the cached token lookup, and the write of a request with its audit
 * event, names drawn again when one is taken (as fleet does).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { auditReason, findToken, insertAuditEvent, insertRequest, isNameTaken, type RequestInput, requestRows, tokenHash, TrustedTokens } from "./http-statements.js"

export interface FloorActor {
  readonly email: string
  readonly name: string
}

const trusted = new TrustedTokens<FloorActor>()

/** The actor of an active token, none for an unknown or revoked one. */
export const actorOfToken = (secret: string) =>
  Effect.gen(function* () {
    const hash = tokenHash(secret)
    const cached = trusted.find(hash)
    if (cached !== undefined) return Option.some(cached)
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ ownerEmail: string; name: string }>(findToken, [hash])
    return Option.map(Option.fromNullable(rows[0]), (row) => trusted.remember(hash, { email: row.ownerEmail, name: row.name }))
  }).pipe(Effect.orDie)

/** Writes a request of `input` by `actor`, and its audit event; the request's id and VMs. */
export const writeRequest = (input: RequestInput, actor: FloorActor) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const written = yield* Effect.suspend(() => {
      const rows = requestRows(input, actor.email)
      return sql.unsafe(insertRequest, rows.parameters).pipe(Effect.as(rows))
    }).pipe(Effect.retry({ times: 3, while: isNameTaken }))
    yield* sql.unsafe(insertAuditEvent, [actor.email, auditReason(actor.name)])
    return { requestId: written.requestId, vms: written.vms }
  }).pipe(Effect.orDie)
