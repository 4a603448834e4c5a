import { Effect, Layer } from "effect"
import { Authentication } from "./Middleware.js"

/** Accepts every caller as one local identity: for in-process tests of the API without tokens. */
export const AuthenticationAnonymous = Layer.succeed(Authentication, {
  bearer: () => Effect.succeed({ email: "anonymous@localhost" })
})
