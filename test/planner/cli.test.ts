import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { wantsColour } from "../../src/cli/PlainConsole.js"
import { processesUsing } from "../../src/db/Embedded.js"
import { Plan } from "../../src/planner/Domain.js"
import { freshDatabase } from "../support/Database.js"
import { runCli } from "../support/Cli.js"

/** `fleet …` to its end, the way a person runs it, with the given environment. */
const fleet = (args: ReadonlyArray<string>, env: Record<string, string>) => runCli(args, { FLEET_ACTOR: "cli-test@example.com", ...env })

describe("the fleet CLI on a database of its own", () => {
  it.scopedLive("demo seed, then plan --dry-run in each format, then a saved plan listed, shown and verified", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const env = { DATABASE_URL: url }

      const seeded = yield* fleet(["demo", "seed", "--apps", "80", "--seed", "5"], env)
      expect(seeded.stderr).toContain("wrote")
      expect(seeded.code).toBe(0)
      expect(seeded.stdout).toMatch(/^Seeded [\d,]+ demo VMs in [\d.]+s: 80 applications/m)

      const json = yield* fleet(["plan", "plans/retire-deprecated.yaml", "--dry-run", "--as-of", "2025-09-01", "--format", "json"], env)
      expect(json.code).toBe(0)
      const plan = Schema.decodeUnknownSync(Plan)(JSON.parse(json.stdout))
      expect(plan.asOf).toBe("2025-09-01T00:00:00.000Z")
      expect(plan.totals.fleetsMoving).toBeGreaterThan(0)

      const directory = mkdtempSync(join(tmpdir(), "fleet-cli-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const html = join(directory, "report.html")
      const written = yield* fleet(["plan", "plans/retire-deprecated.yaml", "--dry-run", "--as-of", "2025-09-01", "--format", "html", "--out", html], env)
      expect(written.code).toBe(0)
      expect(written.stdout).toBe("")
      expect(readFileSync(html, "utf8")).toMatch(/^<!doctype html>/i)
      const text = yield* fleet(["plan", "plans/retire-deprecated.yaml", "--dry-run", "--as-of", "2025-09-01"], env)
      expect(text.stdout).toContain("Recycle plan: retire-deprecated")
      expect(text.stdout).toContain(`${plan.totals.fleetsMoving} fleets move`)

      // A report that cannot be written: exit status 1, and no plan saved (the list below holds one).
      const unwritten = yield* fleet(["plan", "plans/payments-canary.yaml", "--out", join(directory, "missing", "report.txt")], env)
      expect(unwritten.code).toBe(1)
      expect(unwritten.stderr).toContain("cannot write")
      const saved = yield* fleet(["plan", "plans/payments-canary.yaml"], env)
      expect(saved.code).toBe(0)
      const id = /^saved plan ([0-9a-f-]{36}): payments-canary$/m.exec(saved.stdout)?.[1]
      expect(id).toBeDefined()
      const listed = yield* fleet(["plans", "list", "--json"], env)
      const items = JSON.parse(listed.stdout) as Array<{ id: string; createdBy: string }>
      expect(items.map((item) => [item.id, item.createdBy])).toEqual([[id, "cli-test@example.com"]])
      const shown = yield* fleet(["plans", "show", id!, "--format", "markdown"], env)
      expect(shown.stdout).toContain("## Recycle plan: payments-canary")
      const verified = yield* fleet(["plans", "verify", id!], env)
      expect(verified.code).toBe(0)
      expect(verified.stdout).toContain(`plan ${id} is current`)
      // A plan with a schedule says, when saved, that the controllers will run it.
      expect(saved.stdout).toMatch(/^ {2}scheduled: the controllers run it on "30 22 \* \* 0-4" \(America\/New_York\); a newer plan of the same name replaces it$/m)
    }), 120_000)

  it.scopedLive("a bad recycle plan: exit status 1 and every problem with its line and column", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const directory = mkdtempSync(join(tmpdir(), "fleet-cli-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const file = join(directory, "bad.yaml")
      writeFileSync(file, "name: bad\nselect:\n  osVersions: [ubuntu-99.04]\nstrategy:\n  bakeTime: 10\n")
      const ran = yield* fleet(["plan", file, "--dry-run"], { DATABASE_URL: url })
      expect(ran.code).toBe(1)
      expect(ran.stdout).toBe("")
      expect(ran.stderr).toContain(`error: ${file}: 2 problems`)
      expect(ran.stderr).toMatch(/select\.osVersions\[0\]: unknown OS version "ubuntu-99\.04".*\(line 3, column 16\)/)
      expect(ran.stderr).toMatch(/strategy\.bakeTime: expected a duration .*\(line 5, column 3\)/)

      // Problems that are not the recycle plan's are not said to be in it.
      const good = join(directory, "good.yaml")
      writeFileSync(good, "name: good\nselect:\n  osVersions: deprecated\n")
      const badDate = yield* fleet(["plan", good, "--dry-run", "--as-of", "2025-02-30"], { DATABASE_URL: url })
      expect([badDate.code, badDate.stderr]).toEqual([1, "error: as-of: expected a day the calendar has, not 2025-02-30\n"])
      const noZone = yield* fleet(["plan", good, "--dry-run", "--as-of", "2025-09-01T12:00"], { DATABASE_URL: url })
      expect(noZone.stderr).toBe("error: as-of: expected a date-time such as 2025-05-31T12:00:00Z (or a day, 2025-05-31), not 2025-09-01T12:00\n")
      const policies = join(directory, "deprecations.yaml")
      writeFileSync(policies, "policies:\n  - osVersion: ubuntu-16.04\n    deprecatedFrom: someday\n")
      const badPolicies = yield* fleet(["plan", good, "--dry-run"], { DATABASE_URL: url, FLEET_DEPRECATIONS: policies })
      expect(badPolicies.code).toBe(1)
      expect(badPolicies.stderr).toContain(`error: ${policies}: 2 problems\n  - policies[0].deprecatedFrom: expected a date such as 2027-04-30`)
      expect(badPolicies.stderr).not.toContain(good)
    }), 60_000)

  it.scopedLive("refuses to open the embedded database while another process has it open", () =>
    Effect.gen(function* () {
      const dataDir = mkdtempSync(join(tmpdir(), "fleet-busy-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dataDir, { recursive: true, force: true })))
      const pglite = resolve(dataDir, "pglite")
      mkdirSync(pglite)
      if (process.platform !== "linux") {
        // Without /proc the check finds nothing (and says nothing).
        expect(processesUsing(pglite)).toEqual([])
        return
      }
      // Another process holding a file open in the data folder, as `fleet serve` does.
      const holder = yield* Effect.acquireRelease(
        Effect.async<ReturnType<typeof spawn>>((resume) => {
          const child = spawn(process.execPath, ["-e", `require("fs").openSync(${JSON.stringify(join(pglite, "held"))}, "w"); console.log("ready"); setInterval(() => {}, 1000)`])
          child.stdout!.once("data", () => resume(Effect.succeed(child)))
        }),
        (child) => Effect.sync(() => child.kill())
      )
      expect(processesUsing(pglite).map((found) => found.pid)).toEqual([holder.pid])
      // This process's own open files do not count.
      const own = openSync(join(pglite, "own"), "w")
      expect(processesUsing(pglite).map((found) => found.pid)).toEqual([holder.pid])
      closeSync(own)

      const ran = yield* fleet(["plans", "list"], { FLEET_DATA_DIR: dataDir })
      expect(ran.code).toBe(1)
      expect(ran.stderr).toContain(`error: the embedded database in ${pglite} is open in another process: pid ${holder.pid}`)
      expect(ran.stderr).toContain("DATABASE_URL")
      // A second `fleet serve` says so in one line too, without a stack.
      const served = yield* fleet(["serve"], { FLEET_DATA_DIR: dataDir, PORT: "0" })
      expect(served.code).toBe(1)
      expect(served.stderr).toMatch(new RegExp(`^error: the embedded database in ${pglite} is open in another process: pid ${holder.pid}[^\n]*\n$`))
    }), 60_000)
})

// eslint-disable-next-line no-control-regex
const ansi = /\x1b\[/

describe("the fleet CLI's own messages", () => {
  it.live("refuses a --limit the API or the database would not take, before anything is asked", () =>
    Effect.gen(function* () {
      const directory = mkdtempSync(join(tmpdir(), "fleet-limit-"))
      const zero = yield* fleet(["plans", "list", "--limit", "0"], { FLEET_DATA_DIR: join(directory, "data") })
      expect([zero.code, zero.stderr.trim()]).toEqual([
        1, "error: fleet plans list: --limit 0: expected an integer from 1 to 500\n(fleet plans list --help: its arguments and options)"
      ])
      // Refused while reading the options: the embedded database was not even created.
      expect(existsSync(join(directory, "data"))).toBe(false)
      rmSync(directory, { recursive: true, force: true })
      const tooMany = yield* fleet(["runs", "list", "--limit", "1001"], { FLEET_URL: "http://127.0.0.1:9" })
      expect([tooMany.code, tooMany.stderr.split("\n")[0]]).toEqual([1, "error: fleet runs list: --limit 1001: expected an integer from 1 to 1000"])
    }), 60_000)

  it.scopedLive("fleet migrate says what it applied on stdout, and logs only on stderr, as plain lines, at the level --log-level gives", () =>
    Effect.gen(function* () {
      const directory = mkdtempSync(join(tmpdir(), "fleet-migrate-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const migrated = yield* fleet(["migrate"], { FLEET_DATA_DIR: directory })
      expect(migrated.code).toBe(0)
      expect(migrated.stdout).toMatch(/^Applied 1_vms, 2_plans, [\w, ]+\n$/)
      expect(migrated.stderr).toMatch(/^\[[\d:.]+\] WARN: Using the embedded database in /)
      expect(migrated.stderr).not.toContain("service")
      const again = yield* fleet(["migrate"], { FLEET_DATA_DIR: directory })
      expect(again.stdout).toBe("The database is up to date.\n")
      // --log-level sets the level, wherever it is, over LOG_LEVEL and the CLI's default (warnings).
      const quiet = yield* fleet(["migrate", "--log-level", "error"], { FLEET_DATA_DIR: directory, LOG_LEVEL: "info" })
      expect([quiet.code, quiet.stderr]).toEqual([0, ""])
      const chatty = yield* fleet(["--log-level=debug", "plans", "list"], { FLEET_DATA_DIR: directory })
      expect(chatty.stderr).toMatch(/ DEBUG: /)
    }), 60_000)

  it.scopedLive("fleet serve that cannot start says why in a line per problem, exits 1, and with bad settings creates nothing", () =>
    Effect.gen(function* () {
      const directory = mkdtempSync(join(tmpdir(), "fleet-serve-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const dataDir = join(directory, "data")
      // PROCTOR_TIMEOUT is proctor's: without PROCTOR_URL (the bundled simulator) it is not read.
      const badSettings = yield* fleet(["serve"], { PORT: "abc", FLEET_LEASE: "0s", FLEET_RECONCILER_CONCURRENCY: "-3", PROCTOR_TIMEOUT: "soon", FLEET_DATA_DIR: dataDir })
      expect(badSettings.code).toBe(1)
      expect(badSettings.stderr).toBe([
        "error: fleet's settings (environment variables) have problems",
        "  - PORT: Expected an integer value but received \"abc\"",
        "  - FLEET_RECONCILER_CONCURRENCY: expected 0 (follow nothing: the API alone) or more executions at once",
        "  - FLEET_LEASE: expected a duration such as \"500 millis\", \"30 seconds\" or \"5 minutes\", not \"0s\"",
        ""
      ].join("\n"))
      // Read before anything started: the embedded database was not even created.
      expect(existsSync(dataDir)).toBe(false)
      // URLs are checked with the rest, and a database URL is not quoted back (it may hold a password).
      const badUrls = yield* fleet(["serve"], { PORT: "abc", PROCTOR_URL: "nope", DATABASE_URL: "mysql://fleet:s3cret@db/fleet", FLEET_MODE: "prod" })
      expect(badUrls.stderr).toBe([
        "error: fleet's settings (environment variables) have problems",
        "  - FLEET_MODE: Expected one of (development, production) but received \"prod\"",
        "  - DATABASE_URL: expected a PostgreSQL URL such as postgres://user@host:5432/fleet",
        "  - PROCTOR_URL: expected an http(s) URL such as http://proctor.internal:8080",
        "  - PORT: Expected an integer value but received \"abc\"",
        ""
      ].join("\n"))

      const production = yield* fleet(["serve"], { FLEET_MODE: "production" })
      expect([production.code, production.stderr]).toEqual([1, [
        "error: fleet's settings (environment variables) have problems",
        "  - DATABASE_URL: required when FLEET_MODE=production",
        "  - PROCTOR_URL: required when FLEET_MODE=production",
        ""
      ].join("\n")])

      const { url } = yield* freshDatabase
      const missingDatabase = yield* fleet(["serve"], { DATABASE_URL: `${url}_missing`, PROCTOR_URL: "http://127.0.0.1:9" })
      expect(missingDatabase.code).toBe(1)
      expect(missingDatabase.stderr).toMatch(/^error: fleet could not use its database: PgClient: Failed to connect: database "\S+_missing" does not exist\n$/m)
      // The same line, with its cause, from the commands that work on the database, and nothing else.
      for (const command of [["migrate"], ["plans", "list"], ["tokens", "list"]]) {
        const ran = yield* fleet(command, { DATABASE_URL: `${url}_missing` })
        expect([ran.code, ran.stderr], command.join(" ")).toEqual([1, expect.stringMatching(/^error: fleet could not use its database: PgClient: Failed to connect: database "\S+_missing" does not exist\n$/)])
      }
      // Deprecation policies that cannot be read: where, and every problem, before anything serves.
      const policies = join(directory, "deprecations.yaml")
      writeFileSync(policies, "policies:\n  - osVersion: ubuntu-16.04\n    deprecatedFrom: someday\n")
      const badPolicies = yield* fleet(["serve"], { DATABASE_URL: url, PROCTOR_URL: "http://127.0.0.1:9", FLEET_DEPRECATIONS: policies, PORT: "0" })
      expect(badPolicies.code).toBe(1)
      expect(badPolicies.stderr).toMatch(new RegExp(`^error: ${policies}: 2 problems\n {2}- policies\\[0\\]\\.deprecatedFrom: [^\n]*\n {2}- policies\\[0\\]\\.endOfLife: is missing[^\n]*\n$`))
      const migrateInProduction = yield* fleet(["migrate"], { FLEET_MODE: "production" })
      expect([migrateInProduction.code, migrateInProduction.stderr]).toEqual([1, [
        "error: fleet's settings (environment variables) have problems",
        "  - DATABASE_URL: required when FLEET_MODE=production",
        ""
      ].join("\n")])

      const taken = yield* Effect.acquireRelease(
        Effect.async<Server>((resume) => {
          const server = createServer()
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.sync(() => server.close())
      )
      const port = (taken.address() as AddressInfo).port
      const portTaken = yield* fleet(["serve"], { DATABASE_URL: url, PROCTOR_URL: "http://127.0.0.1:9", PORT: String(port) })
      expect(portTaken.code).toBe(1)
      expect(portTaken.stderr).toContain(`error: fleet could not start its HTTP server: listen EADDRINUSE: address already in use 127.0.0.1:${port} (PORT, FLEET_HOST)\n`)
      // It never started, so it does not say it is stopping.
      expect(portTaken.stdout + portTaken.stderr).not.toContain("Stopping")
      // The simulator's mistakes, in a line too.
      const simulatorTaken = yield* fleet(["proctor-sim", "--port", String(port)], {})
      expect([simulatorTaken.code, simulatorTaken.stderr]).toEqual([
        1, `error: port: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port} (--host, --port)\n`
      ])
      const badRate = yield* fleet(["proctor-sim", "--failure-rate", "2"], {})
      expect([badRate.code, badRate.stderr]).toEqual([1, "error: failureRate: expected a rate between 0 and 1\n"])
    }), 60_000)

  it.live("help and a mistyped option or command read as plain text when piped, and the mistake is explained once, with exit status 1", () =>
    Effect.gen(function* () {
      const help = yield* fleet(["runs", "--help"], {})
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("Follow a run with a live progress bar")
      expect(help.stdout).not.toMatch(ansi)

      const mistyped = yield* fleet(["runs", "list", "--limit", "abc"], {})
      expect(mistyped.code).toBe(1)
      expect(mistyped.stderr).toBe("error: fleet runs list: --limit abc: expected a whole number\n(fleet runs list --help: its arguments and options)\n")
      expect(mistyped.stderr).not.toMatch(ansi)
      expect(mistyped.stderr).not.toContain("level=ERROR")

      const noSuchCommand = yield* fleet(["vms", "craete"], {})
      expect(noSuchCommand.code).toBe(1)
      expect(noSuchCommand.stderr).toBe(
        "error: fleet vms has no command 'craete'; did you mean 'create'? Its commands: create, get, list, retry, decommission (fleet vms --help).\n"
      )
    }), 60_000)

  it("colours only a terminal, and not when NO_COLOR is set", () => {
    expect(wantsColour({ isTTY: true }, {})).toBe(true)
    expect(wantsColour({ isTTY: true }, { NO_COLOR: "1" })).toBe(false)
    expect(wantsColour({ isTTY: false }, {})).toBe(false)
    expect(wantsColour({}, {})).toBe(false)
  })
})
