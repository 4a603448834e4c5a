import { FileSystem } from "@effect/platform"
import { fromRoot } from "../common/Paths.js"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { decodeInput, InvalidInput, Issue } from "../common/Errors.js"
import { matchesAny } from "../common/Glob.js"
import { parseYaml } from "../common/Yaml.js"
import {
  ApplicationName,
  CatalogSpec,
  type CreateProc,
  type EnvironmentName,
  type MachineType,
  type OsVersion,
  type ProcName,
  type SingleProc,
  type StackName,
  unknownName
} from "./Domain.js"

/** What a VM is asked to be, before it is checked against the catalog. */
export interface VmShape {
  readonly application: string
  readonly environment: string
  readonly stack: string
  readonly osVersion: string
  readonly machineType: string
}

/** A VM shape every part of which the catalog knows. */
export interface KnownVmShape {
  readonly application: ApplicationName
  readonly environment: EnvironmentName
  readonly stack: StackName
  readonly osVersion: OsVersion
  readonly machineType: MachineType
}

/** The loaded catalog, with the look-ups the rest of fleet needs. Pure: no effects after loading. */
export interface CatalogData {
  readonly spec: CatalogSpec
  readonly source: string
  /** Every problem with a VM shape (unknown values, or no proc to create it), or the shape itself. */
  readonly checkVmShape: (shape: VmShape) => ReadonlyArray<Issue>
  readonly createProcFor: (stack: StackName, os: OsVersion) => Option.Option<CreateProc>
  readonly decommissionProc: SingleProc
  readonly readinessProc: Option.Option<SingleProc>
  readonly shortEnvironment: (environment: EnvironmentName) => string
  readonly shortOsVersion: (os: OsVersion) => string
  readonly isKnownOsVersion: (os: string) => os is OsVersion
  /** Every proc the catalog can send to proctor. */
  readonly procNames: ReadonlyArray<ProcName>
}

export const defaultCatalogPath = fromRoot("src", "catalog", "catalog.yaml")

const duplicates = (values: ReadonlyArray<string>): ReadonlyArray<string> =>
  values.filter((value, index) => values.indexOf(value) !== index)

/** Cross-checks a decoded catalog: procs refer to known stacks and OS versions, no pair has two procs, no duplicates. */
export const makeCatalog = (spec: CatalogSpec, source: string): Effect.Effect<CatalogData, InvalidInput> => {
  const issues: Array<Issue> = []
  const stacks = new Set<string>(spec.stacks)
  const oses = new Map<string, string>(spec.osVersions.map((entry) => [entry.name, entry.short]))
  const environments = new Map<string, string>(spec.environments.map((entry) => [entry.name, entry.short]))
  const machineTypes = new Set<string>(spec.machineTypes)
  for (const [path, values] of [
    ["environments", spec.environments.map((entry) => entry.name)],
    ["stacks", spec.stacks],
    ["osVersions", spec.osVersions.map((entry) => entry.name)],
    ["machineTypes", spec.machineTypes]
  ] as const) {
    for (const duplicate of duplicates(values)) issues.push(Issue.at(path, `${duplicate} is listed twice`))
  }
  const createProcs = new Map<string, CreateProc>()
  spec.procs.create.forEach((entry, index) => {
    const path = ["procs", "create", index]
    if (!stacks.has(entry.stack)) issues.push(Issue.at([...path, "stack"], unknownName("stack", entry.stack, stacks)))
    for (const os of entry.os) {
      if (!oses.has(os)) issues.push(Issue.at([...path, "os"], unknownName("OS version", os, oses.keys())))
      const key = `${entry.stack}/${os}`
      if (createProcs.has(key)) {
        issues.push(new Issue({ path, message: `${entry.stack} on ${os} already has a proc (${createProcs.get(key)!.proc})` }))
      } else {
        createProcs.set(key, entry)
      }
    }
  })
  if (issues.length > 0) return Effect.fail(InvalidInput.fromIssues(issues).in(source))

  const isAllowedApplication = matchesAny(spec.applications)
  const isApplicationName = Schema.is(ApplicationName)
  const checkVmShape = (shape: VmShape): ReadonlyArray<Issue> => {
    const found: Array<Issue> = []
    if (!isApplicationName(shape.application)) {
      found.push(Issue.at("application", "expected an application name: 2-40 characters, lowercase letters, digits and '-', starting with a letter"))
    } else if (!isAllowedApplication(shape.application)) {
      found.push(Issue.at("application", `unknown application ${JSON.stringify(shape.application)}: the catalog allows ${spec.applications.join(", ")}`))
    }
    if (!environments.has(shape.environment)) {
      found.push(Issue.at("environment", unknownName("environment", shape.environment, environments.keys())))
    }
    if (!stacks.has(shape.stack)) {
      found.push(Issue.at("stack", unknownName("stack", shape.stack, spec.stacks)))
    }
    if (!oses.has(shape.osVersion)) {
      found.push(Issue.at("osVersion", unknownName("OS version", shape.osVersion, oses.keys())))
    }
    if (!machineTypes.has(shape.machineType)) {
      found.push(Issue.at("machineType", unknownName("machine type", shape.machineType, spec.machineTypes)))
    }
    if (stacks.has(shape.stack) && oses.has(shape.osVersion) && !createProcs.has(`${shape.stack}/${shape.osVersion}`)) {
      found.push(Issue.at("osVersion", `no proc creates ${shape.stack} VMs on ${shape.osVersion}`))
    }
    return found
  }
  const procNames = [...new Set([
    ...spec.procs.create.map((entry) => entry.proc),
    spec.procs.decommission.proc,
    ...(spec.procs.readiness ? [spec.procs.readiness.proc] : [])
  ])]
  return Effect.succeed({
    spec,
    source,
    checkVmShape,
    createProcFor: (stack, os) => Option.fromNullable(createProcs.get(`${stack}/${os}`)),
    decommissionProc: spec.procs.decommission,
    readinessProc: Option.fromNullable(spec.procs.readiness),
    shortEnvironment: (environment) => environments.get(environment) ?? environment.replace(/[^a-z0-9]/g, "").slice(0, 8),
    shortOsVersion: (os) => oses.get(os) ?? os.replace(/[^a-z0-9]/g, "").slice(0, 8),
    isKnownOsVersion: (os): os is OsVersion => oses.has(os),
    procNames
  })
}

/** Reads, parses, decodes and cross-checks a catalog file. */
export const loadCatalog = (path: string): Effect.Effect<CatalogData, InvalidInput, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) => InvalidInput.one(path, `cannot read the catalog: ${error.message}`))
    )
    const raw = yield* parseYaml(text, path)
    const spec = yield* decodeInput(CatalogSpec)(raw).pipe(Effect.mapError((error) => error.in(path)))
    return yield* makeCatalog(spec, path)
  })

export class Catalog extends Context.Tag("fleet/Catalog")<Catalog, CatalogData>() {
  /** The catalog from FLEET_CATALOG, or the one shipped with fleet. */
  static readonly layer = Layer.effect(
    Catalog,
    Effect.gen(function* () {
      const path = yield* Config.string("FLEET_CATALOG").pipe(Config.withDefault(defaultCatalogPath))
      return yield* loadCatalog(path)
    })
  )
}
