import { Args, Command, Options } from "@effect/cli"
import { Config, Console, Effect, Layer, Option, Redacted } from "effect"
import { hostname, userInfo } from "node:os"
import { type TokenInfo, Tokens } from "../auth/Tokens.js"
import { explainFailure, jsonOption } from "./Connection.js"
import { CliLoggerLive, LocalDatabaseLive } from "./LocalDatabase.js"
import { printJson, table } from "./Output.js"
import { commandGroup } from "./Help.js"

/**
 * `fleet tokens …` works on the database directly (DATABASE_URL, or the embedded database),
 * like `fleet migrate`: it is how the first access is made, before any token exists. (The
 * embedded database is refused while a `fleet serve` has it open: that one prints an admin token.)
 */
const TokensLive = Tokens.Default.pipe(
  Layer.provideMerge(LocalDatabaseLive),
  Layer.provide(CliLoggerLive)
)

/** Who runs the command, for the audit log: FLEET_ACTOR, else user@host. */
const cliActor = Config.string("FLEET_ACTOR").pipe(
  Config.orElse(() => Config.succeed(`${safeUser()}@${hostname()}`))
)
const safeUser = () => {
  try {
    return userInfo().username
  } catch {
    return "unknown"
  }
}

const list = (items: ReadonlyArray<string>) => items.join(",")

const rows = (tokens: ReadonlyArray<TokenInfo>) =>
  table(
    ["ID", "NAME", "OWNER", "SCOPES", "APPLICATIONS", "CREATED", "LAST USED", "REVOKED"],
    tokens.map((token) => [
      token.id,
      token.name,
      token.ownerEmail,
      list(token.scopes),
      token.applications === null ? "*" : list(token.applications),
      token.createdAt.toISOString(),
      token.lastUsedAt?.toISOString() ?? "never",
      token.revokedAt?.toISOString() ?? ""
    ])
  )

const splitList = (text: string) => text.split(",").map((part) => part.trim()).filter((part) => part !== "")

const create = Command.make(
  "create",
  {
    json: jsonOption,
    name: Options.text("name").pipe(Options.withDescription("a name to find the token by, e.g. ci-bot (unique among active tokens)")),
    email: Options.text("email").pipe(
      Options.withDescription("the owner's email: recorded on everything the token does, and sent to proctor as Email-Id")
    ),
    scopes: Options.text("scopes").pipe(
      Options.withDescription("comma-separated: vms:read, vms:write, plans:read, plans:write, runs:write, metrics:read, admin (admin implies all)")
    ),
    applications: Options.text("applications").pipe(
      Options.optional,
      Options.withDescription("comma-separated application names or globs the token is limited to, e.g. payments-*; all when absent")
    )
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const tokens = yield* Tokens
        const actor = yield* cliActor
        const { secret, token } = yield* tokens.create({
          name: options.name,
          ownerEmail: options.email,
          scopes: splitList(options.scopes),
          ...(Option.isSome(options.applications) ? { applications: splitList(options.applications.value) } : {})
        }, actor).pipe(Effect.catchTag("InvalidInput", (invalid) => Effect.fail(invalid.renamed({ ownerEmail: "email" }))))
        if (options.json) return yield* printJson({ ...token, token: Redacted.value(secret) })
        yield* Console.log(rows([token]))
        yield* Console.log(`\nThe token (shown only now; fleet keeps only its hash):\n\n  ${Redacted.value(secret)}\n`)
        yield* Console.log("Use it as `Authorization: Bearer <token>`, or FLEET_TOKEN=<token> for the fleet CLI.")
      }).pipe(Effect.provide(TokensLive))
    )
).pipe(Command.withDescription("Create an API token; it is printed once and stored only as a hash"))

const listCommand = Command.make(
  "list",
  { json: jsonOption, all: Options.boolean("all").pipe(Options.withDescription("include revoked tokens")) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const tokens = yield* Tokens
        const found = yield* tokens.list({ includeRevoked: options.all })
        if (options.json) return yield* printJson(found)
        yield* Console.log(found.length === 0 ? "No tokens. Make one with `fleet tokens create`." : rows(found))
      }).pipe(Effect.provide(TokensLive))
    )
).pipe(Command.withDescription("List API tokens (never their secrets)"))

const revoke = Command.make(
  "revoke",
  { json: jsonOption, token: Args.text({ name: "id|name" }).pipe(Args.withDescription("the token's id or name")) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const tokens = yield* Tokens
        const revoked = yield* tokens.revoke(options.token, yield* cliActor)
        if (options.json) return yield* printJson(revoked)
        yield* Console.log(
          `revoked token ${revoked.name} (${revoked.id}); requests with it are answered 401 within FLEET_TOKEN_CACHE_TTL ` +
            "(5 seconds unless set): each controller trusts a token it has checked that long"
        )
      }).pipe(Effect.provide(TokensLive))
    )
).pipe(Command.withDescription("Revoke an API token: every controller answers it 401 within FLEET_TOKEN_CACHE_TTL (5 seconds)"))

export const tokensCommand = commandGroup(
  "tokens",
  "Create, list and revoke API tokens (on the database directly: DATABASE_URL or the embedded one)",
  [create, listCommand, revoke]
)
