import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { CatalogSpec, OsVersion, StackName } from "../src/catalog/Domain.js"
import { defaultCatalogPath, loadCatalog, makeCatalog } from "../src/catalog/Catalog.js"

const load = (path: string) => loadCatalog(path).pipe(Effect.provide(NodeFileSystem.layer))

describe("catalog", () => {
  it.effect("the shipped catalog loads and knows its procs", () =>
    Effect.gen(function* () {
      const catalog = yield* load(defaultCatalogPath)
      expect(catalog.procNames).toContain("create-vm-java")
      expect(catalog.procNames).toContain("decommission-vm")
      const java = catalog.createProcFor(StackName.make("java"), OsVersion.make("ubuntu-22.04"))
      expect(Option.map(java, (entry) => entry.proc)).toEqual(Option.some("create-vm-java"))
      expect(Option.isNone(catalog.createProcFor(StackName.make("ruby"), OsVersion.make("ubuntu-24.04")))).toBe(true)
    }))

  it.effect("lists every problem of a VM shape", () =>
    Effect.gen(function* () {
      const catalog = yield* load(defaultCatalogPath)
      const issues = catalog.checkVmShape({
        application: "Payments!",
        environment: "prod",
        stack: "cobol",
        osVersion: "windows-95",
        machineType: "huge"
      })
      expect(issues.map((issue) => issue.path.join(".")).sort()).toEqual(["application", "environment", "machineType", "osVersion", "stack"])
      expect(catalog.checkVmShape({
        application: "payments",
        environment: "production",
        stack: "ruby",
        osVersion: "ubuntu-24.04",
        machineType: "e2-small"
      }).map((issue) => issue.message)).toEqual(["no proc creates ruby VMs on ubuntu-24.04"])
    }))

  it.effect("rejects a catalog whose procs name unknown stacks or OS versions, or give a pair two procs", () =>
    Effect.gen(function* () {
      const spec = Schema.decodeUnknownSync(CatalogSpec)({
        environments: [{ name: "production", short: "prd" }],
        stacks: ["java"],
        osVersions: [{ name: "ubuntu-22.04", short: "u2204" }],
        machineTypes: ["e2-small"],
        procs: {
          create: [
            { stack: "java", os: ["ubuntu-22.04"], proc: "a" },
            { stack: "java", os: ["ubuntu-22.04", "ubuntu-99.04"], proc: "b" },
            { stack: "go", os: ["ubuntu-22.04"], proc: "c" }
          ],
          decommission: { proc: "d" }
        }
      })
      const error = yield* Effect.flip(makeCatalog(spec, "test.yaml"))
      expect(error.issues.map((issue) => issue.message)).toEqual([
        "java on ubuntu-22.04 already has a proc (a)",
        "unknown OS version \"ubuntu-99.04\"; expected one of ubuntu-22.04",
        "unknown stack \"go\"; expected one of java"
      ])
    }))

  it.effect("reports YAML syntax errors with line and column, and unknown keys by name", () =>
    Effect.gen(function* () {
      const { mkdtempSync, writeFileSync } = yield* Effect.promise(() => import("node:fs"))
      const dir = mkdtempSync("/tmp/fleet-catalog-")
      writeFileSync(`${dir}/bad.yaml`, "environments:\n  - { name: x\nstacks: [")
      const syntax = yield* Effect.flip(load(`${dir}/bad.yaml`))
      expect(syntax.issues[0]?.message).toMatch(/bad\.yaml:\d+:\d+: /)
      writeFileSync(`${dir}/extra.yaml`, "environments: []\nstacks: [java]\nflavours: 3\n")
      const extra = yield* Effect.flip(load(`${dir}/extra.yaml`))
      expect(extra.issues.map((issue) => issue.path.join("."))).toContain("flavours")
      expect(extra.message).toContain(`${dir}/extra.yaml`)
    }))
})
