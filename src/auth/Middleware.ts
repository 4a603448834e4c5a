import { HttpApiMiddleware, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { CurrentActor } from "./Actor.js"
import { Forbidden, TooManyRequests, Unauthorized } from "./Errors.js"

export { Forbidden, TooManyRequests, Unauthorized } from "./Errors.js"

/**
 * Every endpoint but liveness and readiness: who is calling, from `Authorization: Bearer <token>`.
 * A group that adds this middleware declares 401 (no valid token), 403 (what handlers fail
 * with through `requireScope` / `authorizeApplication`) and 429 (the token's rate is used up)
 * for each of its endpoints, in the OpenAPI document and in the typed client alike.
 * The implementation is `AuthenticationLive` (Authentication.ts).
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("fleet/Authentication", {
  provides: CurrentActor,
  failure: Schema.Union(Unauthorized, Forbidden, TooManyRequests),
  security: {
    bearer: HttpApiSecurity.bearer.pipe(
      HttpApiSecurity.annotate(OpenApi.Description, "An API token made with `fleet tokens create` (shown once)")
    )
  }
}) {}
