import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { generateInventory } from "../../src/demo/Synthetic.js"
import { Plan } from "../../src/planner/Domain.js"
import { buildPlan } from "../../src/planner/Planner.js"
import { renderPlan, reportFormats } from "../../src/planner/Report.js"
import { catalog, fleet, loadExample, now, policies, spec, vm } from "./fixtures.js"

const example = buildPlan({ inventory: { vms: generateInventory(42, 300, catalog) }, policies, spec: loadExample("retire-deprecated.yaml"), catalog, now })

const hostileName = "<script>alert(\"pwned\")</script>"
const hostile = buildPlan({
  inventory: {
    vms: [
      // Names the schemas would refuse, as if they had got into the database some other way.
      ...fleet(2, { application: hostileName }),
      vm({ application: "x|y`z", state: "failed" }),
      vm({ application: "x|y`z" }),
      vm({ application: "esc\u001b[31mape" })
    ]
  },
  policies,
  spec: spec({ name: "<img src=x onerror=alert(1)> | **bold**", description: "with <b>tags</b>" }),
  catalog,
  now
})
// The spec schema refuses control characters; a report must cope if one gets into a stored plan anyway.
const hostilePlan = { ...hostile, description: "bell\u0007 and <b>tags</b>" }

describe("reports", () => {
  it("text: a summary, aligned tables, and skipped fleets with their reasons", () => {
    const text = renderPlan(example, "text")
    expect(text).toMatch(/^Recycle plan: retire-deprecated\n/)
    expect(text).toContain(`${example.totals.fleetsMoving} fleets move (${example.totals.vmsMoving} VMs) in ${example.totals.waves} waves`)
    expect(text).toMatch(/\n {2}FROM {10}TO {12}VMS\n/)
    expect(text).toContain("no-proc: no proc creates ruby VMs on ubuntu-24.04")
    expect(text).toContain("maxSurge 25% (rounded up) and maxUnavailable 0 per fleet")
    expect(text).toContain("next: Tue 2025-09-02 02:00")
    // Every row of the waves table is as wide as its header: columns line up.
    const waves = text.split("\nWaves\n")[1]!.split("\n\n")[0]!.split("\n")
    expect(new Set(waves.slice(0, 2).map((line) => line.length)).size).toBe(1)
  })

  it("numbers waves from 1 for people, while the plan's indexes count from 0", () => {
    expect(example.waves.map((wave) => wave.index)).toEqual(example.waves.map((_, index) => index))
    const text = renderPlan(example, "text")
    const rows = text.split("\nWaves\n")[1]!.split("\n\n")[0]!.split("\n").slice(2)
    expect(rows.map((row) => row.trim().split(/\s{2,}/).slice(0, 2))).toEqual(
      example.waves.map((wave, index) => [String(index + 1), wave.name])
    )
    const html = renderPlan(example, "html")
    const first = example.waves[0]!.name
    expect(html.includes(`<td class="num">1</td><td>${first}</td>`)).toBe(true)
    expect(html.includes(`<td class="num">0</td><td>${first}</td>`)).toBe(false)
  })

  it("markdown: headings and tables for a pull request", () => {
    const markdown = renderPlan(example, "markdown")
    expect(markdown).toMatch(/^## Recycle plan: retire-deprecated\n/)
    expect(markdown).toContain("| From | To | VMs |")
    expect(markdown).toContain("### Skipped fleets")
    expect(markdown).toContain("<details><summary>")
  })

  it("json: the encoded plan, which decodes back to the same plan", () => {
    const decoded = Schema.decodeUnknownSync(Plan)(JSON.parse(renderPlan(example, "json")))
    expect(decoded).toEqual(example)
  })

  it("html: one self-contained page with the two charts and the tables", () => {
    const html = renderPlan(example, "html")
    expect(html.startsWith("<!doctype html>")).toBe(true)
    expect(html).not.toMatch(/<script/i)
    expect(html).not.toMatch(/\s(src|href|xlink:href)\s*=/i)
    expect(html).not.toMatch(/<link|<img|<iframe|@import|url\(/i)
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?https?:/i)
    expect(html.match(/<svg /g)?.length).toBe(2)
    expect(html).toContain("<style>")
    for (const environment of ["integration", "staging", "production"]) expect(html).toContain(`>${environment}</text>`)
    expect(html).toContain("integration canary")
    expect(html).toContain("approval needed before integration")
  })

  it("escapes names from the input in every format", () => {
    const html = renderPlan(hostilePlan, "html")
    expect(html).not.toContain("<script>")
    expect(html).not.toContain("<img")
    expect(html).not.toContain("<b>tags")
    expect(html).toContain("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;")
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;")

    const markdown = renderPlan(hostilePlan, "markdown")
    expect(markdown).not.toContain("<script>")
    expect(markdown).not.toContain("<img")
    expect(markdown).toContain("x\\|y\\`z")

    const text = renderPlan(hostilePlan, "text")
    expect(text).not.toMatch(/\p{Cc}(?<!\n)/u)
    expect(text).toContain("esc?[31mape")
  })

  it("renders an empty plan in every format", () => {
    const empty = buildPlan({ inventory: { vms: [] }, policies, spec: spec({}), catalog, now })
    for (const format of reportFormats) expect(renderPlan(empty, format).length).toBeGreaterThan(0)
    expect(renderPlan(empty, "text")).toContain("Nothing to do: no fleet matches the selection.")
    expect(renderPlan(empty, "html")).toContain("Nothing to schedule.")
  })
})
