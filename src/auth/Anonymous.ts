import { Effect, Layer } from "effect"
import { allScopes } from "./Scopes.js"
import { Authentication } from "./Middleware.js"

/**
 * Accepts every caller as one local identity with every scope: only for in-process tests that
 * explicitly want the API without tokens. Controllers use `AuthenticationLive`.
 */
export const AuthenticationAnonymous = Layer.succeed(Authentication, {
  bearer: () =>
    Effect.succeed({
      email: "anonymous@localhost",
      tokenId: "00000000-0000-7000-8000-000000000000",
      tokenName: "anonymous",
      scopes: allScopes,
      applications: undefined
    })
})
