import { SqlClient, SqlSchema } from "@effect/sql"
import { Config, Duration, Effect, Option, Redacted, Schema } from "effect"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { durationSetting } from "../config/Settings.js"
import { NameGlob } from "../catalog/Domain.js"
import { Conflict, decodeInput, type InvalidInput, NotFound } from "../common/Errors.js"
import { uuidv7 } from "../common/Ids.js"
import type { Caller } from "./Actor.js"
import { Scope } from "./Scopes.js"

export const TokenId = Schema.UUID.pipe(Schema.brand("TokenId"))
export type TokenId = typeof TokenId.Type

/** What `fleet tokens create` takes. */
export class NewToken extends Schema.Class<NewToken>("NewToken")({
  name: Schema.String.pipe(
    Schema.pattern(/^[a-z0-9][a-z0-9._-]{0,62}$/, {
      message: () => "expected a token name: 1-63 lowercase letters, digits, '.', '_' and '-'"
    })
  ),
  ownerEmail: Schema.String.pipe(
    Schema.maxLength(254, { message: () => "expected an email address of at most 254 characters" }),
    Schema.pattern(/^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u, { message: () => "expected an email address" })
  ),
  scopes: Schema.Array(Scope).pipe(Schema.minItems(1, { message: () => `expected at least one scope: ${Scope.literals.join(", ")}` })),
  /** Globs over application names; absent for every application. */
  applications: Schema.optional(Schema.NonEmptyArray(NameGlob))
}) {}

/** A token as listed: everything but the secret (which is never stored). */
export class TokenInfo extends Schema.Class<TokenInfo>("TokenInfo")({
  id: TokenId,
  name: Schema.String,
  ownerEmail: Schema.String,
  scopes: Schema.Array(Scope),
  applications: Schema.NullOr(Schema.Array(Schema.String)),
  createdBy: Schema.String,
  createdAt: Schema.DateFromSelf,
  revokedAt: Schema.NullOr(Schema.DateFromSelf),
  lastUsedAt: Schema.NullOr(Schema.DateFromSelf)
}) {}

/** Tokens are `fleet_` and 43 base64url characters (256 random bits). */
const tokenPattern = /^fleet_[A-Za-z0-9_-]{43}$/

export const generateSecret = (): string => `fleet_${randomBytes(32).toString("base64url")}`

/** What is stored instead of the token: its SHA-256 (the token has 256 random bits; no salt or stretching is needed). */
export const hashSecret = (secret: string): string => createHash("sha256").update(secret, "utf8").digest("hex")

/** Constant-time comparison of two strings (for a configured shared secret). */
export const sameSecret = (a: string, b: string): boolean => {
  const left = createHash("sha256").update(a).digest()
  const right = createHash("sha256").update(b).digest()
  return timingSafeEqual(left, right)
}

const columns = (sql: SqlClient.SqlClient) =>
  sql`id, name, owner_email, scopes, applications, created_by, created_at, revoked_at, last_used_at`

/**
 * `FLEET_TOKEN_CACHE_TTL`: how long a controller trusts a token it has checked before asking the
 * database again (5 seconds unless set; 0 asks on every request). A revocation takes effect
 * within this time on every controller (at once on the one that revoked it).
 */
export const TokenCacheConfig = durationSetting("FLEET_TOKEN_CACHE_TTL").pipe(Config.withDefault(Duration.seconds(5)))

/** At most this many tokens are kept checked (the cache is emptied when it is full). */
const maxCachedTokens = 10_000

/** How often `last_used_at` is written for a token, at most (per controller). */
const lastUsedResolutionMs = 60_000

/** API tokens: created and revoked by the CLI, checked on every request. The database holds only hashes. */
export class Tokens extends Effect.Service<Tokens>()("fleet/Tokens", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const decodeNew = decodeInput(NewToken)
    const lastWritten = new Map<string, number>()
    const cacheMs = Duration.toMillis(yield* TokenCacheConfig)
    const checked = new Map<string, { readonly caller: Caller; readonly until: number }>()

    const findByHash = SqlSchema.findOne({
      Request: Schema.String,
      Result: TokenInfo,
      execute: (hash) => sql`select ${columns(sql)} from api_tokens where token_hash = ${hash} and revoked_at is null`
    })

    const event = (kind: string, actor: string, reason: string) =>
      sql`insert into events ${sql.insert({ actor, kind, application: null, reason })}`

    const describe = (token: { name: string; ownerEmail: string; scopes: ReadonlyArray<string>; applications?: ReadonlyArray<string> | null | undefined }) =>
      `token ${token.name} for ${token.ownerEmail}: ${token.scopes.join(",")}` +
      (token.applications ? `; applications ${token.applications.join(",")}` : "")

    /** Creates a token; the secret is in the answer and nowhere else. */
    const create = (input: unknown, actor: string): Effect.Effect<{ readonly token: TokenInfo; readonly secret: Redacted.Redacted<string> }, InvalidInput | Conflict> =>
      Effect.gen(function* () {
        const spec = yield* decodeNew(input)
        const secret = generateSecret()
        const id = TokenId.make(uuidv7())
        const rows = yield* sql.withTransaction(
          Effect.gen(function* () {
            const inserted = yield* sql<Record<string, unknown>>`
              insert into api_tokens (id, name, owner_email, scopes, applications, token_hash, created_by)
              values (${id}, ${spec.name}, ${spec.ownerEmail}, ${textArray(sql, spec.scopes)},
                      ${spec.applications === undefined ? sql`null` : textArray(sql, spec.applications)},
                      ${hashSecret(secret)}, ${actor})
              on conflict do nothing
              returning ${columns(sql)}`
            if (inserted.length > 0) yield* event("token.created", actor, describe(spec))
            return inserted
          })
        ).pipe(Effect.orDie)
        if (rows.length === 0) {
          return yield* Effect.fail(new Conflict({ message: `an active token named ${spec.name} exists; revoke it first or pick another name` }))
        }
        const token = yield* Schema.decodeUnknown(TokenInfo)(rows[0]).pipe(Effect.orDie)
        return { token, secret: Redacted.make(secret) }
      })

    const list = (options: { readonly includeRevoked?: boolean } = {}) =>
      sql<Record<string, unknown>>`
        select ${columns(sql)} from api_tokens
        ${options.includeRevoked ? sql`` : sql`where revoked_at is null`}
        order by created_at, id`.pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.Array(TokenInfo))),
        Effect.orDie
      )

    /** Revokes the active token with this id or name. */
    const revoke = (idOrName: string, actor: string): Effect.Effect<TokenInfo, NotFound> =>
      sql.withTransaction(
        Effect.gen(function* () {
          const rows = yield* sql<Record<string, unknown>>`
            update api_tokens set revoked_at = now()
            where (id::text = ${idOrName} or name = ${idOrName}) and revoked_at is null
            returning ${columns(sql)}`
          if (rows.length === 0) return Option.none<TokenInfo>()
          const token = yield* Schema.decodeUnknown(TokenInfo)(rows[0])
          for (const [hash, entry] of checked) if (entry.caller.tokenId === token.id) checked.delete(hash)
          yield* event("token.revoked", actor, `${describe(token)} revoked`)
          return Option.some(token)
        })
      ).pipe(
        Effect.orDie,
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(NotFound.of("active token", idOrName)),
          onSome: Effect.succeed
        }))
      )

    /** Notes that a token was used, at most once a minute per token and controller. */
    const touch = (id: string) =>
      Effect.suspend(() => {
        const now = Date.now()
        if (now - (lastWritten.get(id) ?? 0) < lastUsedResolutionMs) return Effect.void
        lastWritten.set(id, now)
        return sql`update api_tokens set last_used_at = now() where id = ${id}`.pipe(
          Effect.asVoid,
          Effect.catchAllCause((cause) => Effect.logWarning("could not record a token's last use", cause))
        )
      })

    const lookUp = (hash: string): Effect.Effect<Option.Option<Caller>> =>
      findByHash(hash).pipe(
        Effect.orDie,
        Effect.map(Option.map((token): Caller => ({
          email: token.ownerEmail,
          tokenId: token.id,
          tokenName: token.name,
          scopes: token.scopes,
          applications: token.applications ?? undefined
        }))),
        Effect.tap((caller) =>
          Effect.sync(() => {
            if (Option.isNone(caller) || cacheMs <= 0) return
            if (checked.size >= maxCachedTokens) checked.clear()
            checked.set(hash, { caller: caller.value, until: Date.now() + cacheMs })
          }))
      )

    /**
     * The caller a bearer token stands for; none for anything that is not an active token. A token
     * found active is trusted for `FLEET_TOKEN_CACHE_TTL` (unknown ones are looked up every time).
     */
    const authenticate = (secret: string): Effect.Effect<Option.Option<Caller>> =>
      Effect.suspend(() => {
        if (!tokenPattern.test(secret)) return Effect.succeedNone
        const hash = hashSecret(secret)
        const cached = checked.get(hash)
        const found = cached !== undefined && cached.until > Date.now() ? Effect.succeedSome(cached.caller) : lookUp(hash)
        return Effect.tap(found, (caller) => Option.isSome(caller) ? touch(caller.value.tokenId) : Effect.void)
      })

    return { create, list, revoke, authenticate } as const
  })
}) {}

/** A text[] built from one JSON parameter. */
const textArray = (sql: SqlClient.SqlClient, values: ReadonlyArray<string>) =>
  sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`
