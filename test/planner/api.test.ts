import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, Redacted, Schema } from "effect"
import * as YAML from "yaml"
import { Catalog } from "../../src/catalog/Catalog.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { seedDemo } from "../../src/demo/Seed.js"
import { Deprecations } from "../../src/planner/Deprecations.js"
import { Plan } from "../../src/planner/Domain.js"
import { defaultPoliciesPath } from "../../src/planner/Spec.js"
import { planHashOf } from "../../src/planner/Planner.js"
import { PlanService } from "../../src/planner/PlanService.js"
import { PlanId, SavedPlan } from "../../src/planner/Records.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"
import { catalog } from "./fixtures.js"
import { type Answer, call, example, onDatabase, tableContents } from "./support.js"

const seed = (fleet: TestFleet, apps = 120) => fleet.use(seedDemo(catalog, { apps, seed: 7, reset: false })).pipe(Effect.orDie)

const decodePlan = Schema.decodeUnknownSync(Plan)
const decodeSaved = Schema.decodeUnknownSync(SavedPlan)

const issuesOf = (answer: Answer) => (answer.json["issues"] as Array<{ path: Array<string | number>; message: string }> | undefined) ?? []

describe("plans over HTTP", () => {
  it.scopedLive("a dry run answers in each format and writes nothing", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      yield* seed(fleet)
      const before = yield* onDatabase(fleet.databaseUrl, tableContents)
      const yaml = example("retire-deprecated.yaml")

      const json = yield* call(fleet, "POST", "/v1/plans?dryRun=true", { body: yaml })
      expect(json.status).toBe(200)
      expect(json.contentType).toMatch(/^application\/json/)
      const plan = decodePlan(json.json)
      expect(plan.name).toBe("retire-deprecated")
      expect(plan.totals.fleetsMoving).toBeGreaterThan(10)
      expect(plan.steps.length).toBe(plan.totals.vmsMoving)
      expect(planHashOf(plan)).toBe(plan.planHash)

      // As of another day, as `fleet plan --as-of` plans; only for a dry run, and only a day the calendar has.
      const asOf = yield* call(fleet, "POST", "/v1/plans?dryRun=true&asOf=2025-09-01", { body: yaml })
      expect([asOf.status, decodePlan(asOf.json).asOf]).toEqual([200, "2025-09-01T00:00:00.000Z"])
      const saving = yield* call(fleet, "POST", "/v1/plans?asOf=2025-09-01", { body: yaml })
      expect([saving.status, saving.json["message"]]).toEqual([400, "asOf: asOf only goes with dryRun=true: a saved plan is made as of now, as the executor will check it"])
      expect((yield* call(fleet, "POST", "/v1/plans?dryRun=true&asOf=2025-02-30", { body: yaml })).status).toBe(400)

      const text = yield* call(fleet, "POST", "/v1/plans?dryRun=true&format=text", { body: yaml, contentType: "text/yaml" })
      expect(text.status).toBe(200)
      expect(text.contentType).toMatch(/^text\/plain/)
      expect(text.text).toContain("Recycle plan: retire-deprecated")
      expect(text.text).toContain(`${plan.totals.fleetsMoving} fleets move`)

      const markdown = yield* call(fleet, "POST", "/v1/plans?dryRun=true&format=markdown", { body: yaml })
      expect(markdown.contentType).toMatch(/^text\/markdown/)
      expect(markdown.text).toContain("## Recycle plan: retire-deprecated")

      const html = yield* call(fleet, "POST", "/v1/plans?dryRun=true&format=html", { body: yaml })
      expect(html.contentType).toMatch(/^text\/html/)
      expect(html.text).toMatch(/^<!doctype html>/i)
      expect(html.text).toContain("<svg")

      // The same recycle plan as JSON gives the same spec and reads the same inventory.
      const asJson = yield* call(fleet, "POST", "/v1/plans?dryRun=true", { body: JSON.stringify(YAML.parse(yaml)), contentType: "application/json" })
      expect(asJson.status).toBe(200)
      const fromJson = decodePlan(asJson.json)
      expect(fromJson.specHash).toBe(plan.specHash)
      expect(fromJson.inventoryDigest).toBe(plan.inventoryDigest)
      expect(fromJson.steps).toEqual(plan.steps)

      expect(yield* onDatabase(fleet.databaseUrl, tableContents)).toEqual(before)
    }))

  it.scopedLive("saves a plan, and gives back the same plan and hash by id, in the list, and as reports", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      yield* seed(fleet)
      const created = yield* call(fleet, "POST", "/v1/plans", { body: example("java-to-2404.yaml") })
      expect(created.status).toBe(201)
      const saved = decodeSaved(created.json)
      expect(created.headers.get("location")).toBe(`/v1/plans/${saved.id}`)
      expect(saved.createdBy).toBe("admin@example.com")
      expect(saved.source).toBe("body")
      expect(saved.planHash).toBe(saved.plan.planHash)
      expect(saved.vmsMoving).toBe(saved.plan.totals.vmsMoving)
      expect(saved.vmsMoving).toBeGreaterThan(0)


      const got = yield* call(fleet, "GET", `/v1/plans/${saved.id}`)
      expect(got.status).toBe(200)
      const again = decodeSaved(got.json)
      expect(again.planHash).toBe(saved.planHash)
      expect(planHashOf(again.plan)).toBe(saved.planHash)
      expect(again.plan).toEqual(saved.plan)
      expect(again.specText).toBe(example("java-to-2404.yaml"))
      expect(again.spec.strategy.bakeTime).toBe(30 * 60)

      // The typed client reads it too.
      const typed = yield* fleet.client.plans.getPlan({ path: { id: saved.id }, urlParams: {} })
      expect(typed).toBeInstanceOf(SavedPlan)
      expect((typed as SavedPlan).planHash).toBe(saved.planHash)

      const markdown = yield* call(fleet, "GET", `/v1/plans/${saved.id}?format=markdown`)
      expect(markdown.contentType).toMatch(/^text\/markdown/)
      expect(markdown.text).toContain(`plan \`${saved.planHash.slice(0, 12)}\``)

      const list = yield* call(fleet, "GET", "/v1/plans")
      expect(list.status).toBe(200)
      const items = list.json["items"] as Array<Record<string, unknown>>
      expect(items.map((item) => item["id"])).toEqual([saved.id])
      expect(items[0]!["planHash"]).toBe(saved.planHash)
      expect(items[0]).not.toHaveProperty("plan")

      const missing = yield* call(fleet, "GET", "/v1/plans/01900000-0000-7000-8000-000000000000")
      expect(missing.status).toBe(404)
      expect(missing.json["_tag"]).toBe("NotFound")
      const malformed = yield* call(fleet, "GET", "/v1/plans/not-a-plan")
      expect(malformed.status).toBe(400)
      const badFormat = yield* call(fleet, "GET", `/v1/plans/${saved.id}?format=pdf`)
      expect(badFormat.status).toBe(400)

      // Saved again with an Idempotency-Key: the replay repeats the answer, its Location included, and saves nothing.
      const headers = { "idempotency-key": "save-java-to-2404" }
      const keyed = yield* call(fleet, "POST", "/v1/plans", { body: example("java-to-2404.yaml"), headers })
      expect(keyed.status).toBe(201)
      const plansBefore = yield* onDatabase(fleet.databaseUrl, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`select id from plans`))
      const replayed = yield* call(fleet, "POST", "/v1/plans", { body: example("java-to-2404.yaml"), headers })
      expect(replayed.status).toBe(201)
      expect(replayed.headers.get("idempotent-replayed")).toBe("true")
      expect(replayed.headers.get("location")).toBe(keyed.headers.get("location"))
      expect(replayed.headers.get("location")).toBe(`/v1/plans/${decodeSaved(keyed.json).id}`)
      expect(replayed.text).toBe(keyed.text)
      expect(yield* onDatabase(fleet.databaseUrl, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`select id from plans`))).toEqual(plansBefore)
    }))

  it.scopedLive("a saved plan turns stale when the VMs of its fleets change, or when the policies change what it would do", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      yield* seed(fleet)
      const created = yield* call(fleet, "POST", "/v1/plans", { body: example("retire-deprecated.yaml") })
      const saved = decodeSaved(created.json)
      const verify = () => call(fleet, "GET", `/v1/plans/${saved.id}/verify`)

      const current = yield* verify()
      expect(current.status).toBe(200)
      expect(current.json["current"]).toBe(true)
      expect(current.json["inventoryDigest"]).toBe(saved.inventoryDigest)

      // A VM outside the plan's fleets changes nothing the plan depends on.
      yield* onDatabase(fleet.databaseUrl, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`
        insert into vms (id, name, application, environment, stack, os_version, machine_type, state, created_by)
        values ('01900000-0000-7000-8000-0000000000aa', 'brand-new-prd-go-u2404-aaaaaa', 'brand-new', 'production', 'go',
                'ubuntu-24.04', 'e2-medium', 'ready', 'test')`))
      expect((yield* verify()).status).toBe(200)

      // The policies now send 20.04 elsewhere: same VMs, other steps.
      const policy = (replacement: string) => JSON.stringify({ deprecatedFrom: "2025-05-31", endOfLife: "2030-05-31", replacement })
      expect((yield* call(fleet, "PUT", "/v1/deprecations/ubuntu-20.04", { body: policy("ubuntu-22.04"), contentType: "application/json" })).status).toBe(200)
      const policiesChanged = yield* verify()
      expect(policiesChanged.status).toBe(409)
      expect(policiesChanged.json["_tag"]).toBe("StalePlan")
      expect(policiesChanged.json["reason"]).toBe("policies-changed")
      // A step whose target changed counts once, not as one removed and one added: every 20.04 VM the
      // plan moves, and the few a 22.04 target lets move that 24.04 did not (a proc only 22.04 has).
      const moved2004 = saved.plan.steps.filter((step) => step.from === "ubuntu-20.04").length
      const differingSteps = policiesChanged.json["differingSteps"] as number
      expect(differingSteps).toBeGreaterThanOrEqual(moved2004)
      expect(differingSteps).toBeLessThan(moved2004 + 20)
      expect(policiesChanged.json["message"]).toMatch(new RegExp(`\\(${differingSteps} steps(, \\d+ skipped fleets?)? would differ\\); make a new plan$`))
      yield* call(fleet, "PUT", "/v1/deprecations/ubuntu-20.04", { body: policy("ubuntu-24.04"), contentType: "application/json" })
      expect((yield* verify()).status).toBe(200)

      // One VM of a moving fleet fails, and one is added to another.
      const [first, second] = [saved.plan.steps[0]!, saved.plan.steps.find((step) => step.fleet !== saved.plan.steps[0]!.fleet)!]
      const [application, environment, stack] = second.fleet.split("/")
      yield* onDatabase(fleet.databaseUrl, Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.all([
        sql`update vms set state = 'failed' where id = ${first.vmId}`,
        sql`insert into vms (id, name, application, environment, stack, os_version, machine_type, state, created_by)
            values ('01900000-0000-7000-8000-0000000000bb', 'extra-vm-abcdef', ${application!}, ${environment!}, ${stack!},
                    'ubuntu-24.04', 'e2-medium', 'ready', 'test')`
      ])))
      const stale = yield* verify()
      expect(stale.status).toBe(409)
      expect(stale.json).toMatchObject({
        _tag: "StalePlan",
        planId: saved.id,
        reason: "inventory-changed",
        differingVms: 2,
        storedDigest: saved.inventoryDigest,
        message: "the inventory changed since this plan was made (2 VMs differ: 1 added, 1 changed); make a new plan"
      })
      expect(stale.json["currentDigest"]).not.toBe(saved.inventoryDigest)

      // The executor's view: the service fails with the tagged error, and get still returns the stored plan.
      const result = yield* fleet.use(Effect.flatMap(PlanService, (plans) => Effect.either(plans.verify(PlanId.make(saved.id)))))
      expect(Either.isLeft(result) && result.left._tag).toBe("StalePlan")
      const stored = yield* fleet.use(Effect.flatMap(PlanService, (plans) => plans.get(PlanId.make(saved.id)))).pipe(Effect.orDie)
      expect(stored.plan.steps).toEqual(saved.plan.steps)
      expect(stored.plan.waves).toEqual(saved.plan.waves)
    }))

  it.scopedLive("bad recycle plans get every problem with its line and column, and nothing is saved", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const syntax = yield* call(fleet, "POST", "/v1/plans", { body: "name: broken\nselect:\n  osVersions: [ubuntu-20.04\n" })
      expect(syntax.status).toBe(400)
      expect(syntax.json["_tag"]).toBe("InvalidInput")
      expect(issuesOf(syntax).length).toBeGreaterThan(0)
      expect(issuesOf(syntax)[0]!.message).toMatch(/^body:\d+:\d+: /)

      const invalid = [
        "name: wrong",
        "select:",
        "  osVersions: [ubuntu-99.04]",
        "  colour: blue",
        "strategy:",
        "  maxSurge: 0",
        "  maxUnavailable: 0",
        "  bakeTime: 10",
        "schedule:",
        "  cron: \"61 * * * *\"",
        "  window: 2h"
      ].join("\n")
      const answer = yield* call(fleet, "POST", "/v1/plans?dryRun=true", { body: invalid })
      expect(answer.status).toBe(400)
      const messages = issuesOf(answer).map((issue) => `${issue.path.join(".")}: ${issue.message}`)
      expect(messages).toEqual(expect.arrayContaining([
        expect.stringMatching(/^select\.colour: is not a field of this input; expected one of .*\(line 4, column 3\)$/),
        expect.stringMatching(/^select\.osVersions\.0: unknown OS version "ubuntu-99\.04".*\(line 3, column 16\)$/),
        expect.stringMatching(/^strategy\.bakeTime: expected a duration .*\(line 8, column 3\)$/),
        expect.stringMatching(/^schedule\.cron: invalid cron expression "61 \* \* \* \*".*\(line 10, column 3\)$/),
        expect.stringMatching(/^strategy\.maxSurge: maxSurge 0 with maxUnavailable 0 allows no progress.*\(line 6, column 3\)$/)
      ]))
      expect(messages).toHaveLength(5)

      const badJson = yield* call(fleet, "POST", "/v1/plans", { body: "{\n  \"name\": \"x\",\n  \"select\": {\n}", contentType: "application/json" })
      expect(badJson.status).toBe(400)
      // The planner reads the text itself: its own problem, at the line and column where the text ends.
      expect([badJson.json["_tag"], issuesOf(badJson)[0]!.message]).toEqual(["InvalidInput", expect.stringMatching(/^body:4:2: /)])
      // YAML sent without a Content-Type is refused by the planner, saying what to send: not read as bad JSON.
      const untyped = yield* call(fleet, "POST", "/v1/plans", { body: "# a comment\nname: x\n", contentType: "" })
      expect([untyped.status, untyped.json["_tag"], untyped.json["accepted"]]).toEqual([415, "UnsupportedMediaType", ["application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml", "application/json"]])

      const csv = yield* call(fleet, "POST", "/v1/plans", { body: "name,select", contentType: "text/csv" })
      expect(csv.status).toBe(415)
      expect(csv.json["_tag"]).toBe("UnsupportedMediaType")
      expect(csv.json["accepted"]).toContain("application/yaml")
      const empty = yield* call(fleet, "POST", "/v1/plans", { body: "  \n" })
      expect(empty.status).toBe(400)
      const badParam = yield* call(fleet, "POST", "/v1/plans?dryRun=maybe", { body: example("retire-deprecated.yaml") })
      expect(badParam.status).toBe(400)

      const rows = yield* onDatabase(fleet.databaseUrl, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`select count(*)::int as n from plans`))
      expect(rows[0]!["n"]).toBe(0)
    }))

  it.scopedLive("plans need plans:read / plans:write and a token not limited to some applications", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const reader = yield* fleet.createToken({ name: "reader", scopes: ["plans:read"] })
      const limited = yield* fleet.createToken({ name: "limited", scopes: ["plans:read", "plans:write"], applications: ["payments-*"] })
      const vmsOnly = yield* fleet.createToken({ name: "vms-only", scopes: ["vms:read"] })
      const body = example("payments-canary.yaml")
      expect((yield* call(fleet, "POST", "/v1/plans?dryRun=true", { body, token: reader })).status).toBe(200)
      const save = yield* call(fleet, "POST", "/v1/plans", { body, token: reader })
      expect(save.status).toBe(403)
      expect(save.json["scope"]).toBe("plans:write")
      const limitedAnswer = yield* call(fleet, "POST", "/v1/plans?dryRun=true", { body, token: limited })
      expect(limitedAnswer.status).toBe(403)
      expect(limitedAnswer.json["message"]).toMatch(/limited to payments-\*/)
      expect((yield* call(fleet, "GET", "/v1/plans", { token: vmsOnly })).status).toBe(403)
      expect((yield* call(fleet, "GET", "/v1/deprecations", { token: null })).status).toBe(401)
      expect((yield* call(fleet, "GET", "/v1/deprecations", { token: reader })).status).toBe(200)
    }))
})

describe("deprecation policies over HTTP", () => {
  it.scopedLive("are seeded from plans/deprecations.yaml, edited with PUT, checked as a whole, and an edit survives a restart", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false, settings: { FLEET_DEPRECATIONS: defaultPoliciesPath } })
      const listed = yield* call(fleet, "GET", "/v1/deprecations")
      expect(listed.status).toBe(200)
      const policies = listed.json["policies"] as Array<Record<string, unknown>>
      expect(policies.map((policy) => policy["osVersion"])).toEqual(["ubuntu-16.04", "ubuntu-18.04", "ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04"])
      expect(policies[0]).toMatchObject({ deprecatedFrom: "2021-04-30", endOfLife: "2026-04-30", replacement: "ubuntu-24.04", updatedBy: "file:plans/deprecations.yaml" })
      expect(policies[1]!["status"]).not.toBe("supported")

      const put = (os: string, body: Record<string, unknown>) => call(fleet, "PUT", `/v1/deprecations/${os}`, { body: JSON.stringify(body), contentType: "application/json" })
      const edited = yield* put("ubuntu-22.04", { deprecatedFrom: "2024-01-31", endOfLife: "2032-04-30", replacement: "ubuntu-24.04", note: "moved up" })
      expect(edited.status).toBe(200)
      expect(edited.json).toMatchObject({ osVersion: "ubuntu-22.04", status: "deprecated", deprecatedFrom: "2024-01-31", note: "moved up", updatedBy: "admin@example.com" })
      expect(edited.json).not.toHaveProperty("link")

      // Bad input: every problem listed, nothing written.
      const before = yield* onDatabase(fleet.databaseUrl, tableContents)
      const unknown = yield* put("ubuntu-99.04", { deprecatedFrom: "2030-01-31", endOfLife: "2029-01-31", replacement: "windows-11.0" })
      expect(unknown.status).toBe(400)
      expect(unknown.json["_tag"]).toBe("InvalidInput")
      expect(issuesOf(unknown).map((issue) => issue.path.join("."))).toEqual(["os", "replacement", "endOfLife"])
      expect(issuesOf(unknown)[0]!.message).toMatch(/^unknown OS version "ubuntu-99\.04"; expected one of ubuntu-16\.04, /)
      const circle = yield* put("ubuntu-24.04", { deprecatedFrom: "2029-05-31", endOfLife: "2034-04-30", replacement: "ubuntu-22.04" })
      expect(circle.status).toBe(400)
      expect(issuesOf(circle)[0]!.message).toBe("replacements would go round in a circle: ubuntu-24.04 → ubuntu-22.04 → ubuntu-24.04")
      const itself = yield* put("ubuntu-24.04", { deprecatedFrom: "2029-05-31", endOfLife: "2034-04-30", replacement: "ubuntu-24.04", osVersion: "ubuntu-22.04" })
      expect(issuesOf(itself).map((issue) => issue.path.join("."))).toEqual(["osVersion", "replacement"])
      const malformed = yield* put("ubuntu-22.04", { deprecatedFrom: "May 2027", endOfLife: "2032-04-30", colour: "red" })
      expect(malformed.status).toBe(400)
      expect(JSON.stringify(malformed.json)).toMatch(/YYYY-MM-DD/)
      expect(JSON.stringify(malformed.json)).toMatch(/colour/)
      expect(yield* onDatabase(fleet.databaseUrl, tableContents)).toEqual(before)

      // A restart: the service starts again on the same database, reads the file again, and seeds nothing over the edit.
      const logged: Array<string> = []
      const restarted = yield* Effect.flatMap(Deprecations, (deprecations) => deprecations.list(new Date("2025-09-01T00:00:00Z"))).pipe(
        Effect.provide(Deprecations.Default.pipe(
          Layer.provide(Layer.mergeAll(layerFromUrl(Redacted.make(fleet.databaseUrl), 1), Layer.succeed(Catalog, catalog), NodeContext.layer)),
          Layer.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logged.push(String(message)))))
        )),
        Effect.scoped,
        Effect.orDie
      )
      expect(restarted.policies.find((policy) => policy.osVersion === "ubuntu-22.04")).toMatchObject({
        deprecatedFrom: "2024-01-31", note: "moved up", updatedBy: "admin@example.com"
      })
      expect(restarted.policies.find((policy) => policy.osVersion === "ubuntu-18.04")?.updatedBy).toBe("file:plans/deprecations.yaml")
      expect(logged.join("\n")).toMatch(/ubuntu-22\.04 differ from plans\/deprecations\.yaml; the database wins/)
    }))
})
