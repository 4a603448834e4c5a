import { HttpApp, HttpServerRequest } from "@effect/platform"
import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, FiberRef } from "effect"
import { requestCaller } from "../auth/Actor.js"
import { makeGroupWriter } from "../common/GroupWriter.js"

const readOnly = new Set(["GET", "HEAD", "OPTIONS"])

interface RequestRecord {
  readonly actor: string
  readonly reason: string
}

/**
 * The `http.request` events, written in groups: concurrent requests share one insert (each still
 * waits for its own record to be written before its answer is sent).
 */
export class RequestRecords extends Effect.Service<RequestRecords>()("fleet/RequestRecords", {
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const record = yield* makeGroupWriter<RequestRecord, void, SqlError.SqlError>({
      write: (group) =>
        Effect.as(
          sql`insert into events (actor, kind, application, reason)
              select actor, 'http.request', null, reason from jsonb_to_recordset(${JSON.stringify(group)}::jsonb) as t(actor text, reason text)`,
          group.map(() => undefined)
        )
    })
    return { record } as const
  })
}) {}

/**
 * The audit record of every mutating request (POST, PUT, PATCH, DELETE) that the API accepted
 * (2xx), whatever the endpoint: an event `http.request` with who (the token's owner), what
 * (method, path, status, token name) and when. It is written when the answer is decided (before
 * it is sent), for every endpoint, including ones added later, without their authors doing
 * anything. The state changes a request causes are events of their own, written with the change (`request.accepted`,
 * `vm.state`, `run.*`, ...). Idempotent replays are not recorded again (nothing happened).
 */
export const auditMutations = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest | RequestRecords> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (readOnly.has(request.method)) return yield* app
    const records = yield* RequestRecords
    // Written by a pre-response handler: before the answer is sent, so an answer means it is recorded.
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.gen(function* () {
        const caller = yield* FiberRef.get(requestCaller)
        if (caller === undefined || response.status < 200 || response.status >= 300) return response
        const path = request.url.split("?")[0]!.slice(0, 500)
        yield* records.record({ actor: caller.email, reason: `${request.method} ${path} → ${response.status} (token ${caller.tokenName})` }).pipe(
          Effect.catchAllCause((cause) => Effect.logError("could not write the audit record of a request", cause))
        )
        return response
      }))
    return yield* app
  })
