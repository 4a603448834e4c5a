import { OpenApi } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Validator } from "@seriousme/openapi-schema-validator"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { Catalog } from "../../src/catalog/Catalog.js"
import { clearDemo, countDemoVms, seedDemo } from "../../src/demo/Seed.js"
import { generateInventory } from "../../src/demo/Synthetic.js"
import { FleetApi } from "../../src/http/Api.js"
import { InventoryRepo } from "../../src/inventory/Repo.js"
import { PlanService } from "../../src/planner/PlanService.js"
import { renderPlan, reportFormats } from "../../src/planner/Report.js"
import { TestDatabase } from "../support/Database.js"
import { catalog, examplePlanFiles, now } from "./fixtures.js"
import { example, tableContents } from "./support.js"

/** The planner's services on a fresh database of their own. */
const PlannerTest = Layer.mergeAll(PlanService.Default, InventoryRepo.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(TestDatabase, Layer.succeed(Catalog, catalog), NodeContext.layer))
)

const run = <A, E>(effect: Effect.Effect<A, E, PlanService | InventoryRepo | SqlClient.SqlClient | Catalog>) =>
  Effect.provide(effect, PlannerTest)

describe("fleet demo seed", () => {
  it.scopedLive("writes the synthetic inventory as demo VMs with one event each, refuses a second time, and replaces with reset", () =>
    run(Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const progress: Array<string> = []
      const result = yield* seedDemo(catalog, {
        apps: 300,
        seed: 42,
        reset: false,
        batchSize: 500,
        progress: (written, total) => Effect.sync(() => progress.push(`${written}/${total}`))
      })
      const generated = generateInventory(42, 300, catalog)
      expect(result.vms).toBe(generated.length)
      expect(result.applications).toBe(300)
      expect(progress.at(-1)).toBe(`${generated.length}/${generated.length}`)
      expect(progress.length).toBe(Math.ceil(generated.length / 500))

      const [row] = yield* sql<{ vms: number; demo: number; requests: number; events: number; inFlight: number }>`
        select count(*)::int as vms, count(*) filter (where created_by = 'demo-seed')::int as demo,
               count(request_id)::int as requests,
               (select count(*)::int from events where actor = 'demo-seed' and kind = 'vm.state') as events,
               count(*) filter (where state in ('pending', 'submitting', 'provisioning', 'decommissioning'))::int as in_flight
        from vms`
      expect(row).toEqual({ vms: generated.length, demo: generated.length, requests: 0, events: generated.length, inFlight: 0 })

      // The inventory the planner reads: every VM that is not decommissioned, exactly as generated.
      const snapshot = yield* (yield* InventoryRepo).snapshot
      const live = generated.filter((vm) => vm.state !== "decommissioned")
      expect(snapshot.vms.map((vm) => vm.id).sort()).toEqual(live.map((vm) => vm.id).sort())
      const byId = new Map(snapshot.vms.map((vm) => [vm.id, vm]))
      for (const vm of live.filter((vm) => vm.state === "ready")) expect(byId.get(vm.id)).toEqual(vm)

      const again = yield* Effect.either(seedDemo(catalog, { apps: 300, seed: 42, reset: false }))
      expect(Either.isLeft(again) && again.left.message).toMatch(/already has [\d,]+ demo VMs; run with --reset/)
      expect(yield* countDemoVms).toBe(generated.length)

      const reset = yield* seedDemo(catalog, { apps: 20, seed: "other", reset: true })
      expect(reset.removed).toBe(generated.length)
      expect(yield* countDemoVms).toBe(reset.vms)
      expect(yield* clearDemo).toBe(reset.vms)
      expect(yield* countDemoVms).toBe(0)
    })))

  it.scopedLive("is fast for 300 applications", () =>
    run(Effect.gen(function* () {
      const started = performance.now()
      yield* seedDemo(catalog, { apps: 300, seed: 1, reset: false })
      expect(performance.now() - started).toBeLessThan(5_000)
    })))
})

describe("plans from the database", () => {
  it.scopedLive("each shipped example plan gives a non-empty plan and report on the demo inventory", () =>
    run(Effect.gen(function* () {
      yield* seedDemo(catalog, { apps: 300, seed: 42, reset: false })
      const plans = yield* PlanService
      for (const file of examplePlanFiles) {
        const plan = yield* plans.dryRun(example(file), file, now)
        expect(plan.totals.fleetsMoving, file).toBeGreaterThan(0)
        expect(plan.steps.length, file).toBe(plan.totals.vmsMoving)
        for (const format of reportFormats) {
          const report = renderPlan(plan, format)
          expect(report.length, `${file} ${format}`).toBeGreaterThan(500)
          if (format !== "json") expect(report, `${file} ${format}`).toContain(plan.name)
        }
      }
    })))

  it.scopedLive("a dry run writes nothing, and a bad recycle plan saves nothing", () =>
    run(Effect.gen(function* () {
      yield* seedDemo(catalog, { apps: 60, seed: 3, reset: false })
      const plans = yield* PlanService
      const before = yield* tableContents
      const plan = yield* plans.dryRun(example("retire-deprecated.yaml"), "retire-deprecated.yaml", now)
      expect(plan.totals.steps).toBeGreaterThan(0)
      const bad = yield* Effect.either(plans.save("name: x\nselect:\n  osVersions: nope\n", "bad.yaml", { email: "someone@example.com" }))
      expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidInput")
      expect(yield* tableContents).toEqual(before)
    })))

  it.scopedLive("save and get give the same plan; list has it; the same inventory verifies", () =>
    run(Effect.gen(function* () {
      yield* seedDemo(catalog, { apps: 60, seed: 3, reset: false })
      const plans = yield* PlanService
      const saved = yield* plans.save(example("payments-canary.yaml"), "payments-canary.yaml", { email: "someone@example.com" }, { now })
      const got = yield* plans.get(saved.id)
      expect(got.planHash).toBe(saved.planHash)
      expect(got.plan).toEqual(saved.plan)
      expect(got.asOf).toBe(now.toISOString())
      expect((yield* plans.list()).items.map((item) => item.id)).toEqual([saved.id])
      const fresh = yield* plans.verify(saved.id)
      expect(fresh.inventoryDigest).toBe(saved.inventoryDigest)
      expect(fresh.steps).toEqual(saved.plan.steps)
    })))
})

describe("the OpenAPI document", () => {
  it.effect("stays valid with the plans and deprecations endpoints, their text reports and YAML bodies", () =>
    Effect.gen(function* () {
      const spec = OpenApi.fromApi(FleetApi) as unknown as {
        paths: Record<string, Record<string, {
          requestBody?: { content: Record<string, unknown> }
          responses: Record<string, { content?: Record<string, unknown> }>
        }>>
      }
      const validation = yield* Effect.promise(() => new Validator().validate(JSON.parse(JSON.stringify(spec)) as Record<string, unknown>))
      expect(validation.errors ?? []).toEqual([])
      expect(validation.valid).toBe(true)
      const create = spec.paths["/v1/plans"]!["post"]!
      expect(Object.keys(create.requestBody!.content).sort()).toEqual(["application/json", "application/yaml", "text/yaml"])
      expect(Object.keys(create.responses["200"]!.content!).sort()).toEqual(["application/json", "text/html", "text/markdown", "text/plain"])
      expect(Object.keys(create.responses["201"]!.content!).sort()).toEqual(["application/json", "text/html", "text/markdown", "text/plain"])
      expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(["400", "415"]))
      expect(Object.keys(spec.paths["/v1/plans/{id}"]!["get"]!.responses)).toEqual(expect.arrayContaining(["200", "400", "404"]))
      expect(Object.keys(spec.paths["/v1/plans/{id}/verify"]!["get"]!.responses)).toEqual(expect.arrayContaining(["200", "404", "409"]))
      expect(Object.keys(spec.paths["/v1/deprecations/{os}"]!["put"]!.responses)).toEqual(expect.arrayContaining(["200", "400"]))
      expect(spec.paths["/v1/deprecations"]!["get"]).toBeDefined()
    }))
})
