import { join } from "node:path"
import { Effect, Schema } from "effect"
import { readFileSync } from "node:fs"
import { defaultCatalogPath, makeCatalog, type CatalogData } from "../../src/catalog/Catalog.js"
import { CatalogSpec } from "../../src/catalog/Domain.js"
import { decodeInput } from "../../src/common/Errors.js"
import { parseYaml } from "../../src/common/Yaml.js"
import type { DeprecationPolicies, InventoryVm, RecyclePlanSpec, VmState } from "../../src/planner/Domain.js"
import { RecyclePlanSpec as SpecSchema } from "../../src/planner/Domain.js"
import { decodePlanSpec, decodePolicies, defaultPoliciesPath, plansDirectory } from "../../src/planner/Spec.js"
import type { ApplicationName, EnvironmentName, MachineType, OsVersion, StackName } from "../../src/catalog/Domain.js"

/** The shipped catalog, loaded synchronously (every step is a pure Effect). */
export const catalog: CatalogData = Effect.runSync(
  Effect.gen(function* () {
    const raw = yield* parseYaml(readFileSync(defaultCatalogPath, "utf8"), defaultCatalogPath)
    const spec = yield* decodeInput(CatalogSpec)(raw)
    return yield* makeCatalog(spec, defaultCatalogPath)
  })
)

export const policies: DeprecationPolicies = Effect.runSync(
  decodePolicies(readFileSync(defaultPoliciesPath, "utf8"), defaultPoliciesPath, catalog)
)

/** A fixed planning time: after 20.04's end of standard support, before 22.04's. */
export const now = new Date("2025-09-01T12:00:00Z")

export const examplePlanFiles = ["retire-deprecated.yaml", "java-to-2404.yaml", "payments-canary.yaml", "production-no-surge.yaml"] as const

export const loadExample = (file: string): RecyclePlanSpec =>
  Effect.runSync(decodePlanSpec(readFileSync(join(plansDirectory, file), "utf8"), file, catalog))

/** A spec from a partial encoded spec (defaults filled in by the schema). */
export const spec = (encoded: Record<string, unknown>): RecyclePlanSpec =>
  Schema.decodeUnknownSync(SpecSchema)({ name: "test", select: { osVersions: "deprecated" }, ...encoded })

let counter = 0

/** A VM with sensible defaults; ids and names unique per call. */
export const vm = (fields: {
  application?: string
  environment?: string
  stack?: string
  osVersion?: string
  machineType?: string
  state?: VmState
  id?: string
  name?: string
} = {}): InventoryVm => {
  counter++
  const application = fields.application ?? "payments-api"
  return {
    id: fields.id ?? `vm-${String(counter).padStart(6, "0")}`,
    name: fields.name ?? `${application}-${counter}`,
    application: application as ApplicationName,
    environment: (fields.environment ?? "production") as EnvironmentName,
    stack: (fields.stack ?? "java") as StackName,
    osVersion: (fields.osVersion ?? "ubuntu-18.04") as OsVersion,
    machineType: (fields.machineType ?? "e2-small") as MachineType,
    state: fields.state ?? "ready"
  }
}

/** `count` VMs of one fleet. */
export const fleet = (count: number, fields: Parameters<typeof vm>[0] = {}): ReadonlyArray<InventoryVm> =>
  Array.from({ length: count }, () => vm(fields))
