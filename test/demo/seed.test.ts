import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { uuidv7 } from "../../src/common/Ids.js"
import type { InventoryVm } from "../../src/planner/Domain.js"
import { demoActor, insertVms, seedDemo } from "../../src/demo/Seed.js"
import { suffixFromBytes, suffixLength } from "../../src/vms/Naming.js"
import { VmRepo } from "../../src/vms/Repo.js"
import { catalog } from "../planner/fixtures.js"
import { freshDatabase, TestDatabase } from "../support/Database.js"
import { runCli } from "../support/Cli.js"

/** The suffixes fleet's own names can end in: characters suffixFromBytes makes of some byte value. */
const namingAlphabet = new Set(Array.from({ length: 256 }, (_, byte) => suffixFromBytes(new Uint8Array(suffixLength).fill(byte))[0]))
const fleetSuffix = new RegExp(`-[${[...namingAlphabet].join("")}]{${suffixLength}}$`)

/** The time a version 7 UUID starts with, read here on its own rather than with the code under test. */
const timeInId = (id: string): number => Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16)

interface DemoRow {
  readonly id: string
  readonly name: string
  /** created_at in milliseconds since the epoch, with any fraction of a millisecond kept. */
  readonly createdMs: number
}

/** The demo VMs as stored, in id order. */
const demoRows = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<DemoRow>`
    select id, name, (extract(epoch from created_at) * 1000)::float8 as created_ms
    from vms where created_by = ${demoActor} order by id`
})

/** Seeds the default-sized demo inventory, replacing any there is. */
const seed = (value: number | string) => seedDemo(catalog, { apps: 300, seed: value, reset: true })

layer(Layer.provideMerge(VmRepo.Default, TestDatabase))("fleet demo seed: ids, creation times and names", (it) => {
  it.effect("every demo VM's id is a UUIDv7 whose time is its created_at, to the millisecond", () =>
    Effect.gen(function* () {
      yield* seed(42)
      const rows = yield* demoRows
      expect(rows.length).toBeGreaterThan(1_000)
      for (const row of rows) expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(rows.map((row) => timeInId(row.id))).toEqual(rows.map((row) => row.createdMs))
    }))

  it.effect("ordering demo VMs by id orders them by creation, and a VM fleet creates later is listed first", () =>
    Effect.gen(function* () {
      yield* seed(42)
      const sql = yield* SqlClient.SqlClient
      const byId = yield* demoRows
      const byCreation = yield* sql<{ id: string }>`select id from vms where created_by = ${demoActor} order by created_at`
      // Distinct times, so that the order by created_at is one order and not a tie.
      expect(new Set(byId.map((row) => row.createdMs)).size).toBe(byId.length)
      expect(byId.map((row) => row.id)).toEqual(byCreation.map((row) => row.id))

      // The walkthrough's case: a replacement made after the seed, then `vms list` (newest first) for its
      // fleet. The old VM is the last one by id, the one most likely to be listed first by mistake.
      const old = (yield* sql<InventoryVm>`
        select id, name, application, environment, stack, os_version, machine_type, state
        from vms where created_by = ${demoActor} and state = 'ready' order by id desc limit 1`)[0]!
      const replacement = { ...old, id: uuidv7(), name: `${old.name.slice(0, -suffixLength)}${"0".repeat(suffixLength)}` }
      yield* insertVms([replacement], { createdBy: "test", reason: "a replacement made after the seed" })
      const listed = yield* (yield* VmRepo).listVms({ application: old.application, environment: old.environment }, Option.none(), 100)
      const listedIds = listed.map((vm): string => vm.id)
      expect(listedIds[0]).toBe(replacement.id)
      expect(listedIds.indexOf(old.id)).toBeGreaterThan(0)
      yield* sql`delete from events where vm_id = ${replacement.id}`
      yield* sql`delete from vms where id = ${replacement.id}`
    }))

  it.effect("every demo VM name ends in a suffix from fleet's naming alphabet", () =>
    Effect.gen(function* () {
      yield* seed(42)
      for (const { name } of yield* demoRows) expect(name).toMatch(fleetSuffix)
    }))

  it.effect("the same seed gives the same ids, names and creation times", () =>
    Effect.gen(function* () {
      yield* seed(42)
      const first = yield* demoRows
      yield* seed("other")
      yield* seed(42)
      expect(yield* demoRows).toEqual(first)
    }))
})

/** What `npm run fleet -- …` runs, on the given database. */
const fleetCli = (args: ReadonlyArray<string>, databaseUrl: string) => runCli(args, { DATABASE_URL: databaseUrl })

describe("the demo seed command", () => {
  it.scopedLive("ends with a next step a checkout can run, and a refusal comes without the progress line", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const seeded = yield* fleetCli(["demo", "seed", "--apps", "5", "--seed", "1"], url)
      expect(seeded.code).toBe(0)
      expect(seeded.stderr).toMatch(/^Generating 5 applications \(seed 1\)…\n {2}wrote /)
      expect(seeded.stdout).toContain("Next: npm run fleet -- plan plans/retire-deprecated.yaml --dry-run")

      const refused = yield* fleetCli(["demo", "seed", "--apps", "5", "--seed", "1"], url)
      expect(refused.code).not.toBe(0)
      expect(refused.stderr).toContain("already has")
      expect(refused.stderr).not.toContain("Generating")
    }))
})
