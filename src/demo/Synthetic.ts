/**
 * Synthetic inventories for demos and benchmarks. Pure and deterministic: (seed, size, catalog)
 * → rows; inserting them is someone else's job (`fleet demo seed`).
 *
 * The demo inventory tries to look like a real estate: a few hundred services named from word
 * lists, most in every environment but some only in a few, production fleets bigger than the
 * others, most fleets on one OS version with a long tail on deprecated ones, integration often a
 * version ahead, a few fleets half-way through a migration, a few failed, timed-out or still
 * provisioning VMs, and some decommissioned history.
 */
import { Option } from "effect"
import type { CatalogData } from "../catalog/Catalog.js"
import { ApplicationName, type EnvironmentName, type MachineType, type OsVersion, type StackName } from "../catalog/Domain.js"
import type { InventoryVm, VmState } from "../planner/Domain.js"
import { suffixFromBytes, suffixLength, vmName } from "../vms/Naming.js"
import { makeRandom, type Random } from "./Random.js"
import { uuidv7FromBytes } from "../common/Ids.js"

/** One generated VM: the planner's inventory row shape. */
export type SyntheticVm = InventoryVm

const domains = [
  "payments", "billing", "checkout", "cart", "catalog", "search", "inventory", "orders", "shipping",
  "identity", "auth", "accounts", "notifications", "email", "ledger", "pricing", "promotions",
  "reviews", "recommendations", "fraud", "risk", "analytics", "reporting", "media", "images",
  "profile", "loyalty", "tax", "invoicing", "subscriptions", "warehouse", "routing", "geo", "support"
] as const

const roles = [
  "api", "worker", "indexer", "gateway", "scheduler", "consumer", "web", "sync", "exporter",
  "importer", "cache", "admin", "service", "processor", "router", "publisher", "stream", "cron",
  "backend", "frontend"
] as const

/** How common each stack is, and how a role leans (front ends are mostly node, indexers java…). */
const stackWeights: Readonly<Record<string, number>> = { java: 30, go: 22, python: 20, node: 18, ruby: 10 }
const roleStacks: Readonly<Record<string, string>> = {
  web: "node", frontend: "node", indexer: "java", stream: "java", gateway: "go", router: "go", exporter: "python", cron: "python"
}

/** A real-looking spread: most fleets on 20.04 / 22.04, a long tail on older versions. */
const osWeights: Readonly<Record<string, number>> = {
  "ubuntu-16.04": 5, "ubuntu-18.04": 14, "ubuntu-20.04": 31, "ubuntu-22.04": 35, "ubuntu-24.04": 15
}

const machineTypesByStack: Readonly<Record<string, ReadonlyArray<string>>> = {
  java: ["n2-standard-4", "n2-highmem-4", "n2-standard-8"],
  go: ["e2-medium", "n2-standard-2"],
  python: ["e2-medium", "n2-standard-2", "n2-standard-4"],
  node: ["e2-small", "e2-medium"],
  ruby: ["n2-standard-2", "e2-medium"]
}

/** A VM as generated: all but its id, which waits for its creation time (see finish). */
interface GeneratedVm extends Omit<SyntheticVm, "id"> {
  readonly idRandomBytes: Uint8Array
}

interface Context {
  readonly random: Random
  readonly catalog: CatalogData
  readonly names: Set<string>
  readonly vms: Array<GeneratedVm>
}

/**
 * The random part of a VM's id: 32 hex digits and a variant, drawn as the version 4 ids of earlier
 * versions were, because the same draws keep each seed's inventory (applications, fleets, OS
 * versions) what it was. The id's first 48 bits become its creation time (see finish).
 */
const idRandomBytes = (random: Random): Uint8Array => {
  const hex = Array.from({ length: 32 }, () => random.int(0, 15).toString(16))
  hex[16] = (8 + random.int(0, 3)).toString(16)
  return Buffer.from(hex.join(""), "hex")
}

/** A name in fleet's own scheme (src/vms/Naming.ts) with a suffix from the generator, unique in the inventory. */
const uniqueVmName = (context: Context, application: string, environment: EnvironmentName, stack: string, os: OsVersion): string => {
  const parts = {
    application,
    environmentShort: context.catalog.shortEnvironment(environment),
    stack,
    osShort: context.catalog.shortOsVersion(os)
  }
  for (;;) {
    const name = vmName(parts, suffixFromBytes(Uint8Array.from({ length: suffixLength }, () => context.random.int(0, 255))))
    if (!context.names.has(name)) {
      context.names.add(name)
      return name
    }
  }
}

/**
 * The demo VMs were created over the year before 2026-01-01: a fixed time, so that a seed always
 * gives the same ids (a version 7 UUID starts with its creation time), and one before fleet
 * existed, so that every VM fleet creates sorts after them (listings are newest first by id).
 */
const demoHistoryEnd = Date.UTC(2026, 0, 1)
const demoHistoryLength = 365 * 24 * 60 * 60 * 1000

/** Replaced VMs were created first and failed or stuck attempts last, so that newest-first listings tell the history in order. */
const creationRank = (state: VmState): number => (state === "decommissioned" ? 0 : state === "ready" ? 1 : 2)

/**
 * A creation time for each VM, given in generation order: spread evenly over the demo history, in
 * creationRank order and generation order within a rank, a distinct millisecond each.
 */
const creationTimes = (states: ReadonlyArray<VmState>): ReadonlyArray<number> => {
  const spacing = Math.max(1, Math.floor(demoHistoryLength / Math.max(1, states.length)))
  const first = demoHistoryEnd - spacing * states.length
  const order = states.map((state, index) => ({ rank: creationRank(state), index })).sort((a, b) => a.rank - b.rank || a.index - b.index)
  const times = new Array<number>(states.length)
  order.forEach(({ index }, position) => (times[index] = first + spacing * position))
  return times
}

/** The generated VMs with their ids: version 7 UUIDs of their creation times. */
const finish = (vms: ReadonlyArray<GeneratedVm>): ReadonlyArray<SyntheticVm> => {
  const times = creationTimes(vms.map((vm) => vm.state))
  return vms.map(({ idRandomBytes, ...vm }, index) => ({ id: uuidv7FromBytes(times[index]!, idRandomBytes), ...vm }))
}

/** OS versions the catalog can build for a stack, in catalog order (so "newer" means later). */
const buildableOs = (catalog: CatalogData, stack: StackName): ReadonlyArray<OsVersion> => {
  const all = catalog.spec.osVersions.map((entry) => entry.name)
  const buildable = all.filter((os) => Option.isSome(catalog.createProcFor(stack, os)))
  return buildable.length > 0 ? buildable : all
}

const newerThan = (versions: ReadonlyArray<OsVersion>, os: OsVersion): OsVersion | undefined => versions[versions.indexOf(os) + 1]

const machineTypeFor = (context: Context, stack: string, large: boolean): MachineType => {
  const known = context.catalog.spec.machineTypes
  const preferred = (machineTypesByStack[stack] ?? []).filter((type) => known.some((entry) => entry === type))
  if (preferred.length === 0) return context.random.pick(known)
  return (large ? preferred[preferred.length - 1]! : context.random.pick(preferred)) as MachineType
}

/** Fleet sizes 1-20 skewed small: geometric-ish, production larger than the rest. */
const fleetSize = (random: Random, role: "first" | "middle" | "last", single: boolean): number => {
  const exponential = (mean: number) => -Math.log(1 - random.next()) * mean
  if (role === "last" || single) return Math.min(20, 1 + Math.floor(exponential(4)))
  if (role === "middle") return Math.min(6, 1 + Math.floor(exponential(1)))
  return Math.min(3, 1 + Math.floor(exponential(0.5)))
}

/** Which of the catalog's environments an application runs in (indices in catalog order). */
const environmentsFor = (random: Random, count: number): ReadonlyArray<number> => {
  const last = count - 1
  if (count === 1) return [0]
  const all = Array.from({ length: count }, (_, index) => index)
  return random.weighted<ReadonlyArray<number>>([
    [all, 55],
    [all.slice(1), 20],
    [[0, last], 10],
    [[last], 10],
    [[0], 5]
  ])
}

const addVm = (
  context: Context,
  fields: Omit<SyntheticVm, "id" | "name">
): void => {
  context.vms.push({
    idRandomBytes: idRandomBytes(context.random),
    name: uniqueVmName(context, fields.application, fields.environment, fields.stack, fields.osVersion),
    ...fields
  })
}

const applicationNames = (random: Random, count: number): ReadonlyArray<ApplicationName> => {
  const pairs = domains.flatMap((domain) => roles.map((role) => `${domain}-${role}`))
  // Fisher-Yates with the seeded generator: a different but reproducible selection per seed.
  for (let index = pairs.length - 1; index > 0; index--) {
    const other = random.int(0, index)
    ;[pairs[index], pairs[other]] = [pairs[other]!, pairs[index]!]
  }
  return Array.from({ length: count }, (_, index) => {
    const round = Math.floor(index / pairs.length)
    const base = pairs[index % pairs.length]!
    return ApplicationName.make(round === 0 ? base : `${base}-${round + 1}`)
  })
}

/** The number of applications `fleet demo seed` generates unless told otherwise. */
export const defaultAppCount = 300

/**
 * A realistic inventory of `appCount` applications (see defaultAppCount). The same seed, count and
 * catalog always give the same rows.
 */
export const generateInventory = (seed: number | string, appCount: number, catalog: CatalogData): ReadonlyArray<SyntheticVm> => {
  const random = makeRandom(seed)
  const context: Context = { random, catalog, names: new Set(), vms: [] }
  const environments = catalog.spec.environments.map((entry) => entry.name)
  const stacks = catalog.spec.stacks

  for (const application of applicationNames(random, appCount)) {
    const role = application.split("-")[1] ?? ""
    const leaning = roleStacks[role]
    const stack = leaning !== undefined && stacks.includes(leaning as StackName) && random.chance(0.6)
      ? (leaning as StackName)
      : random.weighted(stacks.map((name) => [name, stackWeights[name] ?? 10] as const))
    const versions = buildableOs(catalog, stack)
    const baseOs = random.weighted(versions.map((os) => [os, osWeights[os] ?? 10] as const))
    const chosen = environmentsFor(random, environments.length)

    for (const environmentIndex of chosen) {
      const environment = environments[environmentIndex]!
      const position = environmentIndex === 0 ? "first" : environmentIndex === environments.length - 1 ? "last" : "middle"
      // Integration is often a version ahead: teams try the new OS there first.
      const ahead = position === "first" && chosen.length > 1 && random.chance(0.35)
      const os = (ahead ? newerThan(versions, baseOs) : undefined) ?? baseOs
      const size = fleetSize(random, position, chosen.length === 1)
      // A few fleets are half-way through a migration.
      const newer = newerThan(versions, os)
      const migrated = newer !== undefined && size >= 3 && random.chance(0.08) ? random.int(1, Math.floor(size / 2)) : 0
      const large = position === "last" && random.chance(0.3)
      for (let index = 0; index < size; index++) {
        addVm(context, {
          application,
          environment,
          stack,
          osVersion: index < migrated ? newer! : os,
          machineType: machineTypeFor(context, stack, large),
          state: "ready"
        })
      }
      // Trouble: roughly one fleet in twenty has a VM that is not simply ready.
      const trouble = random.weighted<VmState | "none">([["none", 930], ["failed", 30], ["timed_out", 15], ["provisioning", 15], ["pending", 10]])
      if (trouble !== "none") {
        addVm(context, { application, environment, stack, osVersion: os, machineType: machineTypeFor(context, stack, false), state: trouble })
      }
      // History: VMs of an earlier OS version, already gone.
      const older = versions[versions.indexOf(os) - 1]
      if (older !== undefined && random.chance(0.06)) {
        for (let index = random.int(1, 3); index > 0; index--) {
          addVm(context, { application, environment, stack, osVersion: older, machineType: machineTypeFor(context, stack, false), state: "decommissioned" })
        }
      }
    }
  }
  return finish(context.vms)
}

export interface BenchmarkOptions {
  readonly fleets?: number
  readonly vmsPerFleet?: number
  readonly seed?: number | string
  /** The versions half the fleets are on; by default all but the catalog's two newest. */
  readonly deprecatedOsVersions?: ReadonlyArray<OsVersion>
}

/**
 * A large uniform inventory for benchmarks: by default 100,000 ready VMs in 10,000 fleets of 10,
 * every other fleet on a deprecated version. Fast to build, and deterministic.
 */
export const generateBenchmarkInventory = (catalog: CatalogData, options: BenchmarkOptions = {}): ReadonlyArray<SyntheticVm> => {
  const fleets = options.fleets ?? 10_000
  const perFleet = options.vmsPerFleet ?? 10
  const random = makeRandom(options.seed ?? "benchmark")
  const environments = catalog.spec.environments.map((entry) => entry.name)
  const stacks = catalog.spec.stacks
  const allOs = catalog.spec.osVersions.map((entry) => entry.name)
  const deprecated = options.deprecatedOsVersions ?? allOs.slice(0, Math.max(1, allOs.length - 2))
  const supported = allOs.filter((os) => !deprecated.includes(os))
  const context: Context = { random, catalog, names: new Set(), vms: [] }
  const width = String(Math.ceil(fleets / environments.length)).length

  for (let fleet = 0; fleet < fleets; fleet++) {
    const applicationIndex = Math.floor(fleet / environments.length)
    const application = ApplicationName.make(`svc-${String(applicationIndex).padStart(width, "0")}`)
    const environment = environments[fleet % environments.length]!
    const stack = stacks[applicationIndex % stacks.length]!
    const buildable = buildableOs(catalog, stack)
    const pool = (fleet % 2 === 0 ? deprecated : supported).filter((os) => buildable.includes(os))
    const os = random.pick(pool.length > 0 ? pool : fleet % 2 === 0 ? deprecated : supported.length > 0 ? supported : allOs)
    const machineType = machineTypeFor(context, stack, false)
    for (let index = 0; index < perFleet; index++) {
      addVm(context, { application, environment, stack, osVersion: os, machineType, state: "ready" })
    }
  }
  return finish(context.vms)
}
