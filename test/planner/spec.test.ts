import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { formatPath, type InvalidInput } from "../../src/common/Errors.js"
import { CountOrPercent, Duration, formatDuration, RecyclePlanSpec, resolveCountOrPercent } from "../../src/planner/Domain.js"
import { decodePlanSpec, decodePolicies } from "../../src/planner/Spec.js"
import { catalog, examplePlanFiles, loadExample, policies } from "./fixtures.js"

const problems = (error: InvalidInput) => error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`)
const decodeSpec = (text: string) => decodePlanSpec(text, "plan.yaml", catalog)

describe("recycle plan specs", () => {
  it("the shipped example plans and policies decode against the shipped catalog", () => {
    for (const file of examplePlanFiles) expect(loadExample(file).name.length).toBeGreaterThan(0)
    expect(policies.policies.map((policy) => policy.osVersion)).toEqual(["ubuntu-16.04", "ubuntu-18.04", "ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04"])
    const retire = loadExample("retire-deprecated.yaml")
    expect(retire.select.osVersions).toBe("deprecated")
    expect(retire.strategy.maxSurge).toEqual({ kind: "percent", value: 25 })
    expect(retire.strategy.canary).toEqual({ fleets: 2, scope: "first-environment" })
    expect(retire.schedule).toEqual({ cron: "0 2 * * 1-5", timeZone: "Europe/Amsterdam", window: 4 * 3600 })
  })

  it.effect("fills in defaults for everything but the name and the OS versions", () =>
    Effect.gen(function* () {
      const spec = yield* decodeSpec("name: minimal\nselect:\n  osVersions: deprecated\n")
      expect(spec.target).toBe("replacement")
      expect(spec.select.applications).toEqual({ include: ["*"], exclude: [] })
      expect(spec.strategy).toMatchObject({
        maxSurge: { kind: "percent", value: 25 },
        maxUnavailable: { kind: "count", value: 0 },
        maxFleetsInParallel: 5,
        maxInFlight: 20,
        environmentGate: "complete",
        bakeTime: 0,
        failureBudget: { max: { kind: "count", value: 0 }, action: "pause" }
      })
      expect(spec.strategy.environmentOrder).toBeUndefined()
      expect(spec.estimates).toEqual({ create: 600, decommission: 120 })
    }))

  it.effect("accepts JSON as well as YAML", () =>
    Effect.gen(function* () {
      const spec = yield* decodeSpec(JSON.stringify({ name: "json", select: { osVersions: ["ubuntu-18.04"] }, target: "ubuntu-24.04", strategy: { maxSurge: 2 } }))
      expect(spec.select.osVersions).toEqual(["ubuntu-18.04"])
      expect(spec.strategy.maxSurge).toEqual({ kind: "count", value: 2 })
    }))

  it.effect("reports a YAML syntax error with its line and column", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeSpec("name: x\nselect:\n  osVersions: [ubuntu-16.04\nstrategy: {"))
      expect(error.message).toMatch(/plan\.yaml:\d+:\d+/)
    }))

  it.effect("refuses a version listed twice, where it is listed again", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeSpec("name: x\nselect:\n  osVersions: [ubuntu-20.04, ubuntu-18.04, ubuntu-20.04]\n"))
      expect(problems(error)).toEqual([expect.stringMatching(/^select\.osVersions\[2\]: ubuntu-20\.04 is listed already \(select\.osVersions\[0\]\) \(line 3, column \d+\)$/)])
    }))

  it.effect("says an empty plan is empty, and a field of the wrong kind what kind it wants", () =>
    Effect.gen(function* () {
      for (const empty of ["", "# only a comment\n"]) {
        expect(problems(yield* Effect.flip(decodeSpec(empty)))).toEqual([": it is empty: expected a recycle plan (name, select, target …; see plans/README.md)"])
      }
      const found = problems(yield* Effect.flip(decodeSpec("name: 42\nselect: deprecated\n")))
      expect(found).toEqual(expect.arrayContaining([
        expect.stringMatching(/^name: expected a string; got 42 \(line 1, column 1\)$/),
        expect.stringMatching(/^select: expected a mapping of fields \(key: value\); got "deprecated" \(line 2, column 1\)$/)
      ]))
    }))

  it.effect("refuses YAML that parses but has no value: an alias to no anchor, an alias bomb", () =>
    Effect.gen(function* () {
      const dangling = yield* Effect.flip(decodeSpec("%YAML 1.1\n---\n*undefined"))
      expect(dangling._tag).toBe("InvalidInput")
      expect(dangling.message).toContain("plan.yaml")
      const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]", "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]"].join("\n")
      const exploded = yield* Effect.flip(decodeSpec(bomb))
      expect(exploded._tag).toBe("InvalidInput")
    }))

  it.effect("lists every problem at once: unknown keys, wrong types, catalog, cron, time zone, limits", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeSpec([
        "name: broken",
        "select:",
        "  osVersions: [ubuntu-16.04, ubuntu-99.04]",
        "  environments: { include: [prod] }",
        "  flavour: vanilla",
        "target: ubuntu-24.04",
        "strategy:",
        "  maxSurge: 0",
        "  maxUnavailable: 0%",
        "  maxInFlight: lots",
        "  canary: { fleets: 0 }",
        "  failureBudget: { max: 5%, action: explode }",
        "schedule:",
        "  cron: \"61 2 * * *\"",
        "  timeZone: Mars/Olympus",
        "  window: 4 hours",
        ""
      ].join("\n")))
      const found = problems(error)
      const expectations: ReadonlyArray<readonly [string, RegExp]> = [
        ["select.osVersions[1]", /unknown OS version "ubuntu-99\.04".*\(line 3, column/],
        ["select.environments.include[0]", /unknown environment "prod"/],
        ["select.flavour", /is not a field of this input; expected one of .*\(line 5, column 3\)/],
        ["strategy.maxInFlight", /expected a whole number ≥ 1/],
        ["strategy.canary.fleets", /expected a whole number ≥ 1/],
        ["strategy.failureBudget.action", /expected pause or abort; got "explode"/],
        ["schedule.cron", /invalid cron expression "61 2 \* \* \*"/],
        ["schedule.timeZone", /unknown time zone "Mars\/Olympus"/],
        ["schedule.window", /expected a duration such as 90s/],
        ["strategy.maxSurge", /maxSurge 0 with maxUnavailable 0% allows no progress/],
        ["select.environments", /selects no environment/]
      ]
      for (const [path, message] of expectations) {
        expect(found.some((problem) => problem.startsWith(`${path}: `) && message.test(problem)), `${path} ${message}\n${found.join("\n")}`).toBe(true)
      }
      expect(error.issues.length).toBe(expectations.length)
      expect(error.message).toContain("plan.yaml")
    }))

  it.effect("says what a wrong type was expected to be", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeSpec("name: x\nselect:\n  osVersions: 3\ntarget: 7\nstrategy:\n  maxSurge: true\n  bakeTime: 10\n"))
      expect(problems(error)).toEqual(expect.arrayContaining([
        expect.stringMatching(/^select\.osVersions: expected "deprecated" or a list of OS versions/),
        expect.stringMatching(/^target: expected "replacement" or an OS version \(ubuntu-16\.04, /),
        expect.stringMatching(/^strategy\.maxSurge: expected a count \(a whole number ≥ 0\) or a percentage/),
        expect.stringMatching(/^strategy\.bakeTime: expected a duration/)
      ]))
    }))

  it.effect("refuses explicit limits that allow no progress, in any spelling", () =>
    Effect.gen(function* () {
      for (const [surge, unavailable] of [["0", "0"], ["0%", "0"], ["0", "0%"]] as const) {
        const error = yield* Effect.flip(decodeSpec(`name: x\nselect:\n  osVersions: deprecated\nstrategy:\n  maxSurge: ${surge}\n  maxUnavailable: ${unavailable}\n`))
        expect(problems(error).join("\n")).toMatch(/allows no progress/)
      }
      const ok = yield* decodeSpec("name: x\nselect:\n  osVersions: deprecated\nstrategy:\n  maxSurge: 0\n  maxUnavailable: 10%\n")
      expect(ok.strategy.maxUnavailable).toEqual({ kind: "percent", value: 10 })
    }))

  it.effect("refuses a target that is also a source, and an environment order that leaves out a selected environment", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeSpec([
        "name: x",
        "select:",
        "  osVersions: [ubuntu-18.04, ubuntu-24.04]",
        "  environments: { exclude: [integration] }",
        "target: ubuntu-24.04",
        "strategy:",
        "  environmentOrder: [production, production]"
      ].join("\n")))
      const found = problems(error).join("\n")
      expect(found).toMatch(/^target: ubuntu-24\.04 is the target and also listed in select\.osVersions/m)
      expect(found).toMatch(/^strategy\.environmentOrder: does not list staging, which the selection includes/m)
      expect(found).toMatch(/production listed twice/)
    }))

  it.effect("refuses globs that match nothing in the catalog, but accepts ones that do", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeSpec("name: x\nselect:\n  osVersions: deprecated\n  stacks: { include: [\"cob*\"] }\n"))
      expect(problems(error).join("\n")).toMatch(/select\.stacks\.include\[0\]: cob\* matches no stack/)
      const ok = yield* decodeSpec("name: x\nselect:\n  osVersions: deprecated\n  stacks: { include: [\"j*\", python] }\n  applications: { include: [\"payments-*\"] }\n")
      expect(ok.select.stacks.include).toEqual(["j*", "python"])
    }))

  it("encodes a decoded spec back to what a person would write", () => {
    const spec = loadExample("retire-deprecated.yaml")
    const encoded = Schema.encodeSync(RecyclePlanSpec)(spec)
    expect(encoded.strategy?.maxSurge).toBe("25%")
    expect(encoded.strategy?.bakeTime).toBe("15m")
    expect(encoded.schedule?.window).toBe("4h")
    expect(Schema.decodeUnknownSync(RecyclePlanSpec)(encoded)).toEqual(spec)
  })
})

describe("durations and limits", () => {
  const duration = Schema.decodeUnknownEither(Duration)
  it("reads durations with units and refuses bare numbers", () => {
    expect(Schema.decodeUnknownSync(Duration)("90s")).toBe(90)
    expect(Schema.decodeUnknownSync(Duration)("10m")).toBe(600)
    expect(Schema.decodeUnknownSync(Duration)("4h")).toBe(14_400)
    expect(Schema.decodeUnknownSync(Duration)("1d")).toBe(86_400)
    expect(Schema.decodeUnknownSync(Duration)("1h30m")).toBe(5_400)
    for (const bad of ["10", "", "1.5h", "30m1h", "-1m", 10]) expect(duration(bad)._tag).toBe("Left")
    expect(formatDuration(5_400)).toBe("1h30m")
    expect(formatDuration(0)).toBe("0s")
  })

  it("reads counts and percentages, and refuses anything else", () => {
    const decode = Schema.decodeUnknownSync(CountOrPercent)
    expect(decode(3)).toEqual({ kind: "count", value: 3 })
    expect(decode("12.5%")).toEqual({ kind: "percent", value: 12.5 })
    for (const bad of [-1, 2.5, "150%", "ten", "5", "%", true]) expect(Schema.decodeUnknownEither(CountOrPercent)(bad)._tag).toBe("Left")
  })

  it("rounds maxSurge percentages up and maxUnavailable percentages down, exactly", () => {
    const percent = (value: number) => ({ kind: "percent" as const, value })
    expect(resolveCountOrPercent(percent(25), 6, "up")).toBe(2)
    expect(resolveCountOrPercent(percent(25), 6, "down")).toBe(1)
    expect(resolveCountOrPercent(percent(10), 1, "up")).toBe(1)
    expect(resolveCountOrPercent(percent(10), 1, "down")).toBe(0)
    expect(resolveCountOrPercent(percent(10), 30, "up")).toBe(3)
    expect(resolveCountOrPercent(percent(10), 30, "down")).toBe(3)
    expect(resolveCountOrPercent(percent(33.33), 3, "down")).toBe(0)
    expect(resolveCountOrPercent(percent(100), 7, "down")).toBe(7)
    expect(resolveCountOrPercent({ kind: "count", value: 4 }, 2, "up")).toBe(4)
  })
})

describe("deprecation policies", () => {
  it.effect("lists every problem: unknown versions, duplicates, a circle of replacements, dates", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodePolicies([
        "policies:",
        "  - { osVersion: ubuntu-18.04, deprecatedFrom: 2023-05-31, endOfLife: 2028-05-31, replacement: ubuntu-20.04 }",
        "  - { osVersion: ubuntu-20.04, deprecatedFrom: 2025-05-31, endOfLife: 2030-05-31, replacement: ubuntu-18.04 }",
        "  - { osVersion: ubuntu-18.04, deprecatedFrom: 2023-05-31, endOfLife: 2020-01-01 }",
        "  - { osVersion: windows-11.0, deprecatedFrom: 2023-02-30, endOfLife: 2030-01-01, colour: blue }",
        ""
      ].join("\n"), "deprecations.yaml", catalog))
      const found = problems(error).join("\n")
      expect(found).toMatch(/policies\[2\]\.osVersion: ubuntu-18\.04 already has a policy \(policies\[0\]\)/)
      expect(found).toMatch(/policies\[2\]\.endOfLife: end of life 2020-01-01 is before deprecatedFrom 2023-05-31/)
      expect(found).toMatch(/policies\[3\]\.osVersion: unknown OS version "windows-11\.0"/)
      expect(found).toMatch(/policies\[3\]\.deprecatedFrom: 2023-02-30 is not a calendar date/)
      expect(found).toMatch(/policies\[3\]\.colour: is not a field of this input; expected one of /)
      expect(found).toMatch(/replacements go round in a circle: ubuntu-18\.04 → ubuntu-20\.04 → ubuntu-18\.04/)
    }))

  it.effect("says a version that replaces itself once, not again as a circle", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodePolicies(
        "policies:\n  - { osVersion: ubuntu-16.04, deprecatedFrom: 2021-04-30, endOfLife: 2026-04-30, replacement: ubuntu-16.04 }\n",
        "deprecations.yaml",
        catalog
      ))
      expect(problems(error)).toEqual([expect.stringMatching(/^policies\[0\]\.replacement: ubuntu-16\.04 cannot replace itself/)])
    }))
})
