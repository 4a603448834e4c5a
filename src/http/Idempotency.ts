import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Schedule } from "effect"
import { createHash } from "node:crypto"
import { durationSetting } from "../config/Settings.js"
import { bearerToken } from "../auth/Authentication.js"
import { hashSecret } from "../auth/Tokens.js"

/** `FLEET_IDEMPOTENCY_TTL`: how long a key and its answer are kept (24 hours unless set). */
export const IdempotencyConfig = durationSetting("FLEET_IDEMPOTENCY_TTL").pipe(Config.withDefault(Duration.hours(24)))

export const idempotencyHeader = "idempotency-key"
const keyPattern = /^[\x21-\x7e]{1,255}$/

type Claim =
  | { readonly _tag: "Claimed"; readonly tokenId: string }
  | { readonly _tag: "NoToken" }
  | { readonly _tag: "Replay"; readonly status: number; readonly contentType: string | null; readonly location: string | null; readonly body: string }
  | { readonly _tag: "Mismatch" }
  | { readonly _tag: "InProgress" }

interface Stored {
  readonly tokenId: string
  readonly requestHash: string
  readonly status: number | null
  readonly contentType: string | null
  readonly location: string | null
  readonly body: string | null
}

/** The idempotency keys table: claims, answers, releases, and the purge of expired keys. */
export class IdempotencyStore extends Effect.Service<IdempotencyStore>()("fleet/IdempotencyStore", {
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ttl = yield* IdempotencyConfig
    const ttlMs = Duration.toMillis(ttl)

    /**
     * Inserting the row is the claim (an expired row is taken over); the token must be active.
     * When the row is there already, what it holds decides: replay, mismatch or in progress.
     */
    const claim = (tokenHash: string, key: string, requestHash: string, method: string, path: string): Effect.Effect<Claim> =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 3; attempt++) {
          const inserted = yield* sql<{ tokenId: string }>`
            insert into idempotency_keys (token_id, key, request_hash, method, path, expires_at)
            select id, ${key}, ${requestHash}, ${method}, ${path}, now() + ${ttlMs}::float8 * interval '1 millisecond'
            from api_tokens where token_hash = ${tokenHash} and revoked_at is null
            on conflict (token_id, key) do update set
              request_hash = excluded.request_hash, method = excluded.method, path = excluded.path,
              status = null, content_type = null, location = null, body = null, created_at = now(), expires_at = excluded.expires_at
            where idempotency_keys.expires_at <= now()
            returning token_id`
          if (inserted[0] !== undefined) return { _tag: "Claimed", tokenId: inserted[0].tokenId } as const
          const [stored] = yield* sql<Stored>`
            select k.token_id, k.request_hash, k.status, k.content_type, k.location, k.body
            from idempotency_keys k join api_tokens t on t.id = k.token_id
            where t.token_hash = ${tokenHash} and t.revoked_at is null and k.key = ${key} and k.expires_at > now()`
          if (stored === undefined) {
            // Either the token is not an active one, or the key was released in between: ask again.
            const [token] = yield* sql`select 1 from api_tokens where token_hash = ${tokenHash} and revoked_at is null`
            if (token === undefined) return { _tag: "NoToken" } as const
            continue
          }
          if (stored.requestHash !== requestHash) return { _tag: "Mismatch" } as const
          if (stored.status === null || stored.body === null) return { _tag: "InProgress" } as const
          return { _tag: "Replay", status: stored.status, contentType: stored.contentType, location: stored.location, body: stored.body } as const
        }
        return { _tag: "InProgress" } as const
      }).pipe(Effect.orDie)

    const complete = (tokenId: string, key: string, answer: { readonly status: number; readonly contentType: string | null; readonly location: string | null; readonly body: string }) =>
      sql`update idempotency_keys set status = ${answer.status}, content_type = ${answer.contentType}, location = ${answer.location}, body = ${answer.body}
          where token_id = ${tokenId} and key = ${key}`.pipe(Effect.orDie, Effect.asVoid)

    const release = (tokenId: string, key: string) =>
      sql`delete from idempotency_keys where token_id = ${tokenId} and key = ${key} and status is null`.pipe(Effect.orDie, Effect.asVoid)

    const purge = sql`delete from idempotency_keys where expires_at <= now()`.pipe(Effect.asVoid)
    yield* purge.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("could not purge expired idempotency keys", cause)),
      Effect.repeat(Schedule.spaced(Duration.min(ttl, Duration.hours(1)))),
      Effect.delay(Duration.min(ttl, Duration.hours(1))),
      Effect.forkScoped
    )

    return { claim, complete, release, ttl } as const
  })
}) {}

const problem = (status: number, tag: string, message: string) => HttpServerResponse.unsafeJson({ _tag: tag, message }, { status })

/** The bytes of a response body we can keep (JSON and text answers); undefined for streams. */
const bodyText = (response: HttpServerResponse.HttpServerResponse): string | undefined => {
  switch (response.body._tag) {
    case "Uint8Array":
      return new TextDecoder().decode(response.body.body)
    case "Raw":
      return typeof response.body.body === "string" ? response.body.body : undefined
    case "Empty":
      return ""
    default:
      return undefined
  }
}

/**
 * `Idempotency-Key` on every POST, for every endpoint (one mechanism, not one per handler):
 * - the key is scoped to the token (its hash identifies it), and kept `FLEET_IDEMPOTENCY_TTL`;
 * - the first request claims the key (a row; a concurrent duplicate gets 409 while it runs),
 *   runs uninterruptibly, and keeps its answer if it is a 2xx (otherwise the key is released,
 *   so a failed request can be retried with the same key);
 * - the same key again with the same method, URL and body gets that answer back (status and
 *   body, and its Location header if it had one, with `Idempotent-Replayed: true`) and nothing
 *   runs; with anything else, 422.
 * Requests with a token that is not an active one are passed through (authentication answers 401).
 */
export const idempotency = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest | IdempotencyStore> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "POST") return yield* app
    const key = request.headers[idempotencyHeader]
    if (key === undefined) return yield* app
    if (!keyPattern.test(key)) {
      return HttpServerResponse.unsafeJson({
        _tag: "HttpApiDecodeError",
        message: "Idempotency-Key: expected 1-255 printable ASCII characters, without spaces",
        issues: [{ _tag: "Type", path: ["headers", idempotencyHeader], message: "expected 1-255 printable ASCII characters, without spaces" }]
      }, { status: 400 })
    }
    const secret = bearerToken(request.headers["authorization"])
    if (secret === undefined) return yield* app
    return yield* Effect.uninterruptible(withKey(app, request, key, secret))
  })

/** Claim, run (or replay, or refuse), keep: not interruptible, so that no claim is left behind by a client that went away. */
const withKey = <E, R>(app: HttpApp.Default<E, R>, request: HttpServerRequest.HttpServerRequest, key: string, secret: string) =>
  Effect.gen(function* () {
    const body = yield* Effect.orElseSucceed(request.text, () => "")
    const requestHash = createHash("sha256").update(`${request.method} ${request.url}\n`).update(body).digest("hex")
    const store = yield* IdempotencyStore
    const claim = yield* store.claim(hashSecret(secret), key, requestHash, request.method, request.url)
    switch (claim._tag) {
      case "NoToken":
        return yield* app
      case "Mismatch":
        return problem(422, "IdempotencyKeyReused", "this Idempotency-Key was used with a different request; use a new key")
      case "InProgress":
        return problem(409, "IdempotencyKeyInProgress", "a request with this Idempotency-Key is in progress (or was interrupted); check its result or use a new key")
      case "Replay":
        return HttpServerResponse.text(claim.body, {
          status: claim.status,
          contentType: claim.contentType ?? "application/json",
          headers: claim.location === null ? { "idempotent-replayed": "true" } : { "idempotent-replayed": "true", location: claim.location }
        })
      case "Claimed": {
        // The answer is kept (or the key released) by a pre-response handler: before a byte of it is
        // sent, so that a client that retries right after its answer finds the key settled.
        let settled = false
        yield* HttpApp.appendPreResponseHandler((_request, response) =>
          Effect.suspend(() => {
            settled = true
            const text = bodyText(response)
            return text !== undefined && response.status >= 200 && response.status < 300
              ? store.complete(claim.tokenId, key, {
                status: response.status,
                contentType: response.headers["content-type"] ?? contentTypeOf(response),
                location: response.headers["location"] ?? null,
                body: text
              })
              : store.release(claim.tokenId, key)
          }).pipe(Effect.as(response)))
        const exit = yield* Effect.exit(app)
        // Should no answer have gone through the handlers, the key is released all the same.
        if (!settled) yield* store.release(claim.tokenId, key)
        return yield* exit
      }
    }
  })

const contentTypeOf = (response: HttpServerResponse.HttpServerResponse): string | null =>
  "contentType" in response.body && typeof response.body.contentType === "string" ? response.body.contentType : null
