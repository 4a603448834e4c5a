/**
 * Plans around the pure planner: read the inventory and the policies, build the plan, and save it
 * so that an executor runs exactly what was reviewed.
 *
 * ## The saved-plan contract
 * A saved plan keeps the recycle plan (as submitted and as decoded), the computed plan with its
 * hash, and the inventory digest it was computed from (see Planner.ts, "Digest"). Before a run the
 * executor calls `verify(id)`: the plan is computed again for the stored spec, against the current
 * inventory and the current policies, as of the plan's own planning time (so the passage of time
 * alone never makes a plan stale). It fails with `StalePlan` when
 * - the digest differs: VMs of the plan's fleets were added, removed, renamed, changed state or OS
 *   version, or a new fleet now matches the selection (`inventory-changed`); or
 * - the digest is the same but the steps or the skipped fleets are not: the policies or the catalog
 *   changed what the plan would do (`policies-changed`).
 * Otherwise it returns the freshly computed plan, which then does the same as the stored one.
 */
import { Clock, Effect, Option, Schema } from "effect"
import type { Actor } from "../auth/Actor.js"
import { Catalog } from "../catalog/Catalog.js"
import { NotFound } from "../common/Errors.js"
import { uuidv7 } from "../common/Ids.js"
import { InventoryRepo } from "../inventory/Repo.js"
import { fleetIdOf, type InventorySnapshot, type InventoryVm, Plan, RecyclePlanSpec } from "./Domain.js"
import { buildPlan, digestFleetIds, inventoryDigestOf, planHashOf } from "./Planner.js"
import { PlanId, planUri, SavedPlan, SavedPlanList, SavedPlanSummary, StalePlan } from "./Records.js"
import { PlanRepo, type PlanSummaryRow } from "./Repo.js"
import { plural } from "./ReportFormat.js"
import { Deprecations } from "./Deprecations.js"
import { decodePlanSpec } from "./Spec.js"

type DigestRow = readonly [id: string, name: string, state: string, osVersion: string]

/** The VMs the digest of `plan` covers, from a snapshot: every live VM of the plan's fleets (and of `extraFleets`). */
const digestVms = (plan: Plan, snapshot: InventorySnapshot, extraFleets: ReadonlySet<string> = new Set()): ReadonlyArray<InventoryVm> => {
  const fleets = digestFleetIds(plan)
  return snapshot.vms.filter((vm) => {
    if (vm.state === "decommissioned") return false
    const fleet = fleetIdOf(vm.application, vm.environment, vm.stack)
    return fleets.has(fleet) || extraFleets.has(fleet)
  })
}

const digestRows = (vms: ReadonlyArray<InventoryVm>): ReadonlyArray<DigestRow> =>
  vms.map((vm): DigestRow => [vm.id, vm.name, vm.state, vm.osVersion]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))

/** VMs added, removed or changed between two sets of digest rows. */
const countDifferences = (before: ReadonlyArray<DigestRow>, after: ReadonlyArray<DigestRow>) => {
  const old = new Map(before.map((row) => [row[0], row]))
  let added = 0
  let changed = 0
  for (const row of after) {
    const previous = old.get(row[0])
    if (previous === undefined) added++
    else if (previous[1] !== row[1] || previous[2] !== row[2] || previous[3] !== row[3]) changed++
    old.delete(row[0])
  }
  return { added, removed: old.size, changed, total: added + old.size + changed }
}

/** Steps (by VM: target and wave) and skipped fleets that differ between two plans of the same spec. */
/**
 * What would change in a plan made again: its steps (by the VM each replaces), its skipped fleets
 * (by fleet) and its waves' gates (by wave), each counted once however it changed.
 */
const planDifferences = (stored: Plan, fresh: Plan) => {
  const differing = <T>(before: ReadonlyArray<T>, after: ReadonlyArray<T>, id: (item: T) => string, content: (item: T) => string) => {
    const was = new Map(before.map((item) => [id(item), content(item)]))
    const is = new Map(after.map((item) => [id(item), content(item)]))
    return [...new Set([...was.keys(), ...is.keys()])].filter((key) => was.get(key) !== is.get(key)).length
  }
  return {
    steps: differing(stored.steps, fresh.steps, (step) => step.vmId, (step) => `${step.to} ${step.wave} ${step.fleet}`),
    skipped: differing(stored.skipped, fresh.skipped, (fleet) => fleet.id, (fleet) => fleet.reasons.map((reason) => reason.code).join(",")),
    waves: differing(stored.waves, fresh.waves, (wave) => String(wave.index), (wave) => `${wave.gate} ${wave.kind}`)
  }
}

const encodeSpec = Schema.encodeSync(RecyclePlanSpec)
const encodePlan = Schema.encodeSync(Plan)
const decodeStoredPlan = Schema.decodeUnknown(Plan)
const decodeStoredSpec = Schema.decodeUnknown(RecyclePlanSpec)

const summaryOf = (row: PlanSummaryRow): SavedPlanSummary => {
  const id = PlanId.make(row.id)
  return new SavedPlanSummary({
    id,
    uri: planUri(id),
    name: row.name,
    source: row.source,
    asOf: row.asOf.toISOString(),
    specHash: row.specHash,
    planHash: row.planHash,
    inventoryDigest: row.inventoryDigest,
    fleetsMoving: row.fleetsMoving,
    vmsMoving: row.vmsMoving,
    fleetsSkipped: row.fleetsSkipped,
    steps: row.steps,
    waves: row.waves,
    estimatedSeconds: row.estimatedSeconds,
    createdBy: row.createdBy,
    createdAt: row.createdAt
  })
}

export interface SaveOptions<E, R> {
  /** The instant the plan is made as of: now when absent. */
  readonly now?: Date
  /** Checks the computed plan before it is stored; a failure stores nothing. */
  readonly admit?: (plan: Plan) => Effect.Effect<void, E, R>
  /**
   * Whether to log the saved plan (yes when absent). No for a caller whose transaction may still
   * roll the plan back: it logs once it has committed.
   */
  readonly log?: boolean
}

export class PlanService extends Effect.Service<PlanService>()("fleet/PlanService", {
  effect: Effect.gen(function* () {
    const catalog = yield* Catalog
    const inventory = yield* InventoryRepo
    const deprecations = yield* Deprecations
    const repo = yield* PlanRepo

    /** The plan for a decoded spec against the inventory and policies as they are now in the database. */
    const compute = (spec: RecyclePlanSpec, now: Date) =>
      Effect.gen(function* () {
        const [snapshot, policies] = yield* Effect.all([inventory.snapshot, deprecations.current])
        const plan = yield* Effect.sync(() => buildPlan({ inventory: snapshot, policies, spec, catalog, now })).pipe(
          Effect.withSpan("buildPlan", { attributes: { vms: snapshot.vms.length } })
        )
        return { plan, snapshot }
      })

    /**
     * Reads a recycle plan (YAML or JSON text; `source` names it in messages: a file path, or
     * "body") and computes its plan as of `now`. Writes nothing. Every problem with the text is
     * listed in one InvalidInput, each with its line and column.
     */
    const dryRun = (specText: string, source: string, now: Date) =>
      Effect.gen(function* () {
        const spec = yield* decodePlanSpec(specText, source, catalog)
        const { plan } = yield* compute(spec, now)
        return plan
      })

    const get = (id: PlanId) =>
      Effect.gen(function* () {
        const found = yield* repo.find(id)
        if (Option.isNone(found)) return yield* Effect.fail(NotFound.of("plan", id))
        const row = found.value
        const [plan, spec] = yield* Effect.all([decodeStoredPlan(row.plan), decodeStoredSpec(row.spec)]).pipe(
          Effect.orDieWith((error) => new Error(`saved plan ${id} does not decode: ${error.message}`))
        )
        if (planHashOf(plan) !== row.planHash || plan.planHash !== row.planHash) {
          return yield* Effect.dieMessage(`saved plan ${id} does not match its hash ${row.planHash}: it was changed after it was saved`)
        }
        return new SavedPlan({ ...summaryOf(row), specText: row.specText, spec, plan })
      })

    /**
     * Reads a recycle plan, computes its plan and stores both with their hashes and the inventory
     * digest (see the module comment). Nothing is saved when the text has a problem, or when
     * `admit` refuses the computed plan (it runs before the plan is stored: a caller that would
     * fail with the plan it saved, such as a replacement with nothing to replace, fails first).
     */
    const save = <E = never, R = never>(specText: string, source: string, actor: Actor, options: SaveOptions<E, R> = {}) =>
      Effect.gen(function* () {
        const at = options.now ?? new Date(yield* Clock.currentTimeMillis)
        const spec = yield* decodePlanSpec(specText, source, catalog)
        const { plan, snapshot } = yield* compute(spec, at)
        if (options.admit !== undefined) yield* options.admit(plan)
        const covered = digestVms(plan, snapshot)
        const fleetVms = digestRows(covered)
        if (inventoryDigestOf(covered) !== plan.inventoryDigest) {
          return yield* Effect.dieMessage(`the digest rows of plan ${plan.name} do not give its inventory digest`)
        }
        const id = PlanId.make(uuidv7())
        const createdAt = yield* repo.insert({
          id,
          name: plan.name,
          source,
          spec: encodeSpec(spec),
          specText,
          specHash: plan.specHash,
          plan: encodePlan(plan),
          planHash: plan.planHash,
          inventoryDigest: plan.inventoryDigest,
          fleetVms,
          asOf: new Date(plan.asOf),
          fleetsMoving: plan.totals.fleetsMoving,
          vmsMoving: plan.totals.vmsMoving,
          fleetsSkipped: plan.totals.fleetsSkipped,
          steps: plan.totals.steps,
          waves: plan.totals.waves,
          estimatedSeconds: plan.estimate.totalSeconds,
          createdBy: actor.email
        })
        if (options.log !== false) {
          yield* Effect.logInfo(`Saved plan ${id} (${plan.name}) for ${actor.email}`).pipe(
            Effect.annotateLogs({ planId: id, planHash: plan.planHash, inventoryDigest: plan.inventoryDigest, steps: plan.totals.steps })
          )
        }
        return new SavedPlan({
          id,
          uri: planUri(id),
          name: plan.name,
          source,
          asOf: plan.asOf,
          specHash: plan.specHash,
          planHash: plan.planHash,
          inventoryDigest: plan.inventoryDigest,
          fleetsMoving: plan.totals.fleetsMoving,
          vmsMoving: plan.totals.vmsMoving,
          fleetsSkipped: plan.totals.fleetsSkipped,
          steps: plan.totals.steps,
          waves: plan.totals.waves,
          estimatedSeconds: plan.estimate.totalSeconds,
          createdBy: actor.email,
          createdAt,
          specText,
          spec,
          plan
        })
      })

    /** Saved plans, newest first. */
    const list = (limit = 50) => Effect.map(repo.list(limit), (rows) => new SavedPlanList({ items: rows.map(summaryOf) }))

    /**
     * Checks that a saved plan still is what would happen (see the module comment) and returns the
     * plan computed now; a StalePlan when it is not.
     */
    const verifySaved = (saved: SavedPlan) =>
      Effect.gen(function* () {
        const id = saved.id
        const stored = saved.plan
        const { plan: fresh, snapshot } = yield* compute(saved.spec, new Date(stored.asOf))
        if (fresh.inventoryDigest !== stored.inventoryDigest) {
          const before = yield* repo.fleetVms(id)
          const after = digestRows(digestVms(stored, snapshot, digestFleetIds(fresh)))
          const difference = countDifferences(before, after)
          const detail = [
            difference.added > 0 ? `${difference.added} added` : "",
            difference.removed > 0 ? `${difference.removed} removed` : "",
            difference.changed > 0 ? `${difference.changed} changed` : ""
          ].filter((part) => part !== "").join(", ")
          return yield* Effect.fail(new StalePlan({
            message: `the inventory changed since this plan was made (${plural(difference.total, "VM")} differ${difference.total === 1 ? "s" : ""}` +
              `${detail === "" ? "" : `: ${detail}`}); make a new plan`,
            planId: id,
            reason: "inventory-changed",
            differingVms: difference.total,
            differingSteps: 0,
            storedDigest: stored.inventoryDigest,
            currentDigest: fresh.inventoryDigest
          }))
        }
        const differences = planDifferences(stored, fresh)
        const differ = [
          differences.steps > 0 ? plural(differences.steps, "step") : "",
          differences.skipped > 0 ? plural(differences.skipped, "skipped fleet") : "",
          differences.waves > 0 ? plural(differences.waves, "wave") : ""
        ].filter((part) => part !== "")
        if (differ.length > 0) {
          return yield* Effect.fail(new StalePlan({
            message: `the deprecation policies or the catalog changed what this plan would do since it was made ` +
              `(${differ.join(", ")} would differ); make a new plan`,
            planId: id,
            reason: "policies-changed",
            differingVms: 0,
            differingSteps: differences.steps,
            storedDigest: stored.inventoryDigest,
            currentDigest: fresh.inventoryDigest
          }))
        }
        return fresh
      })

    return {
      dryRun,
      save,
      get,
      list,
      verify: (id: PlanId) => Effect.flatMap(get(id), verifySaved),
      /** `verify` of a plan already read. */
      verifySaved
    } as const
  }),
  dependencies: [InventoryRepo.Default, Deprecations.Default, PlanRepo.Default]
}) {}
