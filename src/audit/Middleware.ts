import { HttpApp, HttpServerRequest } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect, FiberRef } from "effect"
import { requestCaller } from "../auth/Actor.js"

const readOnly = new Set(["GET", "HEAD", "OPTIONS"])

/**
 * The audit record of every mutating request (POST, PUT, PATCH, DELETE) that the API accepted
 * (2xx), whatever the endpoint: an event `http.request` with who (the token's owner), what
 * (method, path, status, token name) and when. It is written when the answer is decided (before
 * it is sent), for every endpoint, including ones added later, without their authors doing
 * anything. The state changes a request causes are events of their own, written with the change (`request.accepted`,
 * `vm.state`, `run.*`, ...). Idempotent replays are not recorded again (nothing happened).
 */
export const auditMutations = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest | SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (readOnly.has(request.method)) return yield* app
    const sql = yield* SqlClient.SqlClient
    // Written by a pre-response handler: before the answer is sent, so an answer means it is recorded.
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.gen(function* () {
        const caller = yield* FiberRef.get(requestCaller)
        if (caller === undefined || response.status < 200 || response.status >= 300) return response
        const path = request.url.split("?")[0]!.slice(0, 500)
        yield* sql`insert into events ${
          sql.insert({
            actor: caller.email,
            kind: "http.request",
            application: null,
            reason: `${request.method} ${path} → ${response.status} (token ${caller.tokenName})`
          })
        }`.pipe(Effect.catchAllCause((cause) => Effect.logError("could not write the audit record of a request", cause)))
        return response
      }))
    return yield* app
  })
