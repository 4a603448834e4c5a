import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * No valid token. One answer for every reason (no header, not a bearer token, unknown, revoked,
 * malformed), so that it tells a caller nothing about which tokens exist.
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {
  static readonly standard = new Unauthorized({ message: "a valid API token is required: Authorization: Bearer <token>" })
}

/** A valid token that may not do this: it lacks `scope`, or is not allowed `application`. */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  {
    message: Schema.String,
    scope: Schema.optional(Schema.String),
    application: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** The token has used up its rate; `Retry-After` says when to come back. */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()(
  "TooManyRequests",
  { message: Schema.String, retryAfterSeconds: Schema.Int },
  HttpApiSchema.annotations({ status: 429 })
) {}
