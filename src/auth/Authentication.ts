import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, FiberRef, Layer, Option } from "effect"
import { requestCaller } from "./Actor.js"
import { RateLimiter } from "../http/RateLimit.js"
import { scopeOf } from "../http/Routes.js"
import { lacksScope } from "./Authorization.js"
import { grants } from "./Scopes.js"
import { Unauthorized, TooManyRequests } from "./Errors.js"
import { Authentication } from "./Middleware.js"
import { Tokens } from "./Tokens.js"

/** The token of an `Authorization: Bearer <token>` header (the scheme in any case), if that is what it is. */
export const bearerToken = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined
  const match = /^bearer +(\S+) *$/i.exec(header)
  return match?.[1]
}

/**
 * The real `Authentication`: the bearer token must be an active API token (401 otherwise, the
 * same answer whatever is wrong with it); its owner becomes the `CurrentActor`, with the token's
 * scopes and applications; then the token's rate limit applies (429 with `Retry-After`); then the
 * scope the endpoint's definition names (`RequiredScope`: 403), before its input is read.
 */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const tokens = yield* Tokens
    const limiter = yield* RateLimiter
    return {
      bearer: () =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const secret = bearerToken(request.headers["authorization"])
          const caller = secret === undefined ? Option.none() : yield* tokens.authenticate(secret)
          if (Option.isNone(caller)) return yield* Effect.fail(Unauthorized.standard)
          const decision = limiter.take(caller.value.tokenId)
          if (decision._tag === "Limited") {
            const seconds = decision.retryAfterSeconds
            yield* HttpApp.appendPreResponseHandler((_request, response) =>
              Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds))))
            return yield* Effect.fail(new TooManyRequests({ message: `rate limit exceeded; retry in ${seconds} s`, retryAfterSeconds: seconds }))
          }
          // The scope the endpoint's definition names, before the request is read: a token without it
          // learns nothing of what the endpoint would say of its input.
          const { route } = yield* HttpRouter.RouteContext
          const required = scopeOf(route.method, route.path)
          if (required !== undefined && !grants(caller.value.scopes, required)) return yield* Effect.fail(lacksScope(required))
          yield* FiberRef.set(requestCaller, caller.value)
          return caller.value
        })
    }
  })
)

/** Authentication with what it needs above the database: token checks and the per-token rate limit. */
export const AuthLive = AuthenticationLive.pipe(Layer.provide([Tokens.Default, RateLimiter.Default]))
