import { HttpApiMiddleware, HttpApiSchema, HttpApiSecurity } from "@effect/platform"
import { Schema } from "effect"
import { CurrentActor } from "./Actor.js"

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** Every endpoint but liveness and readiness: who is calling, from `Authorization: Bearer <token>`. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("fleet/Authentication", {
  provides: CurrentActor,
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}
