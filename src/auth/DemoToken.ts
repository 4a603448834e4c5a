import { Effect, Layer, Option, Redacted } from "effect"
import { DatabaseConfig } from "../db/Database.js"
import { Tokens } from "./Tokens.js"

export const demoTokenName = "embedded-admin"

/**
 * The one-command demo: in the embedded-database mode (no DATABASE_URL, development), a fresh
 * admin token is made at every start (the previous one is revoked) and printed on stderr —
 * not logged. With DATABASE_URL set, or in production mode, nothing is made or printed: make
 * tokens with `fleet tokens create`.
 */
export const DemoAdminToken = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* DatabaseConfig
    if (Option.isSome(config.url) || config.mode === "production") return
    const tokens = yield* Tokens
    const revoked = yield* tokens.revoke(demoTokenName, "fleet").pipe(Effect.as(true), Effect.catchTag("NotFound", () => Effect.succeed(false)))
    const { secret } = yield* tokens.create(
      { name: demoTokenName, ownerEmail: "admin@localhost", scopes: ["admin"] },
      "fleet"
    ).pipe(Effect.orDie)
    yield* Effect.sync(() =>
      process.stderr.write(
        `\n  Embedded demo mode: an admin API token was made for this run${revoked ? " (the previous one is revoked)" : ""}:\n\n` +
          `    export FLEET_TOKEN=${Redacted.value(secret)}\n\n` +
          "  Use it as `Authorization: Bearer $FLEET_TOKEN`; the fleet CLI reads FLEET_TOKEN.\n\n"
      )
    )
  })
).pipe(Layer.provide(Tokens.Default))
