import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { createHash } from "node:crypto"
import { runCli } from "../../src/cli/Cli.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"
import { field, request, vmRequestBody, withSql } from "./support.js"

/** Runs `fleet …` in-process against the fleet's database; what it printed on stdout and stderr. */
const fleetCli = (fleet: TestFleet, ...args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const err: Array<string> = []
    const log = vi.spyOn(console, "log").mockImplementation((...parts: Array<unknown>) => void out.push(parts.join(" ")))
    const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk))
      return true
    })
    const previousExitCode = process.exitCode
    yield* runCli(["node", "fleet", ...args]).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
        ["DATABASE_URL", fleet.databaseUrl],
        ["FLEET_ACTOR", "ops@example.com"],
        ["LOG_LEVEL", "Error"]
      ]))),
      Effect.ensuring(Effect.sync(() => {
        log.mockRestore()
        write.mockRestore()
      })),
      Effect.orDie
    )
    const failed = process.exitCode === 1
    process.exitCode = previousExitCode
    return { out: out.join("\n"), err: err.join(""), failed }
  })

afterEach(() => {
  vi.restoreAllMocks()
})

describe("fleet tokens", () => {
  it.scopedLive("creates a token shown once and stored as a hash, lists it without its secret, and revokes it", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const created = yield* fleetCli(fleet, "tokens", "create", "--name", "ci-bot", "--email", "ci@example.com",
        "--scopes", "vms:write,runs:write", "--applications", "payments-*")
      expect(created.failed).toBe(false)
      const secrets = created.out.match(/fleet_[A-Za-z0-9_-]{43}/g) ?? []
      expect(secrets).toHaveLength(1)
      const secret = secrets[0]!

      // Only the SHA-256 is in the database.
      const rows = yield* withSql(fleet, (sql) => sql<{ row: string; tokenHash: string }>`
        select row_to_json(t)::text as row, token_hash from api_tokens t where name = 'ci-bot'`)
      expect(rows).toHaveLength(1)
      expect(rows[0]!.tokenHash).toBe(createHash("sha256").update(secret).digest("hex"))
      expect(rows[0]!.row).not.toContain(secret)
      expect(rows[0]!.row).not.toContain(secret.slice(6, 30))

      // It works, within its scopes and applications, as its owner.
      const accepted = yield* request(fleet, "POST", "/v1/vm-requests", { token: secret, body: vmRequestBody() })
      expect(accepted.status).toBe(202)
      expect((yield* request(fleet, "POST", "/v1/vm-requests", { token: secret, body: vmRequestBody({ application: "search-indexer" }) })).status).toBe(403)
      expect(field(yield* request(fleet, "GET", "/v1/vms", { token: secret }), "scope")).toBe("vms:read")

      const listed = yield* fleetCli(fleet, "tokens", "list")
      expect(listed.out).toContain("ci-bot")
      expect(listed.out).toContain("ci@example.com")
      expect(listed.out).toContain("vms:write,runs:write")
      expect(listed.out).toContain("payments-*")
      expect(listed.out).not.toContain(secret)
      const json = JSON.parse((yield* fleetCli(fleet, "tokens", "list", "--json")).out) as Array<{ name: string; lastUsedAt: string | null }>
      expect(json.map((token) => token.name).sort()).toEqual(["ci-bot", "test-admin"])
      expect(json.find((token) => token.name === "ci-bot")!.lastUsedAt).not.toBeNull()

      // A second active token of the same name is refused; nothing is written.
      const duplicate = yield* fleetCli(fleet, "tokens", "create", "--name", "ci-bot", "--email", "ci@example.com", "--scopes", "vms:read")
      expect(duplicate.failed).toBe(true)
      expect(duplicate.err).toContain("an active token named ci-bot exists")
      const invalid = yield* fleetCli(fleet, "tokens", "create", "--name", "Bad Name", "--email", "nobody", "--scopes", "vms:read,root")
      expect(invalid.failed).toBe(true)
      expect(invalid.err).toContain("name")
      // Each problem named as the command line has it (--email, not the API's ownerEmail).
      expect(invalid.err).toContain("  - email: expected an email address\n")
      expect(invalid.err).toContain("scopes")
      const noScopes = yield* fleetCli(fleet, "tokens", "create", "--name", "empty", "--email", "e@example.com", "--scopes", "")
      expect(noScopes.err).toContain("scopes: expected at least one scope: vms:read, vms:write, plans:read, plans:write, runs:write, metrics:read, admin")
      const count = yield* withSql(fleet, (sql) => sql<{ n: number }>`select count(*)::int as n from api_tokens`)
      expect(count[0]!.n).toBe(2)

      const revoked = yield* fleetCli(fleet, "tokens", "revoke", "ci-bot")
      expect(revoked.failed).toBe(false)
      expect(revoked.out).toContain("revoked token ci-bot")
      expect((yield* request(fleet, "POST", "/v1/vm-requests", { token: secret, body: vmRequestBody() })).status).toBe(401)
      expect((yield* fleetCli(fleet, "tokens", "revoke", "ci-bot")).failed).toBe(true)
      expect((yield* fleetCli(fleet, "tokens", "list")).out).not.toContain("ci-bot")
      expect((yield* fleetCli(fleet, "tokens", "list", "--all")).out).toContain("ci-bot")

      const events = yield* withSql(fleet, (sql) => sql<{ kind: string; actor: string; reason: string }>`
        select kind, actor, reason from events where kind like 'token.%' and reason like '%ci-bot%' order by id`)
      expect(events).toEqual([
        { kind: "token.created", actor: "ops@example.com", reason: "token ci-bot for ci@example.com: vms:write,runs:write; applications payments-*" },
        { kind: "token.revoked", actor: "ops@example.com", reason: "token ci-bot for ci@example.com: vms:write,runs:write; applications payments-* revoked" }
      ])
    }))

  it.scopedLive("trusts a checked token for FLEET_TOKEN_CACHE_TTL, and never caches an unknown or revoked one", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false, settings: { FLEET_TOKEN_CACHE_TTL: "1 hour" } })
      const used = yield* fleet.createToken({ name: "used", scopes: ["vms:read"] })
      const unused = yield* fleet.createToken({ name: "unused", scopes: ["vms:read"] })
      expect((yield* request(fleet, "GET", "/v1/vms", { token: used })).status).toBe(200)
      // Revoked by another process (the CLI, another controller): this controller learns it when its cache entry expires.
      expect((yield* fleetCli(fleet, "tokens", "revoke", "used")).failed).toBe(false)
      expect((yield* fleetCli(fleet, "tokens", "revoke", "unused")).failed).toBe(false)
      expect((yield* request(fleet, "GET", "/v1/vms", { token: used })).status).toBe(200)
      expect((yield* request(fleet, "GET", "/v1/vms", { token: unused })).status).toBe(401)
      // What it trusts is what the token allowed: its scopes still apply.
      expect((yield* request(fleet, "GET", "/metrics", { token: used })).status).toBe(403)
    }))
})
