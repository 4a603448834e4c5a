/**
 * The HTML dry-run report: one self-contained page (inline CSS and SVG; no scripts, fonts,
 * images or links to fetch), meant to be looked at: the OS mix of each environment before and
 * after, and the waves on a timeline, then the tables. Every string from the input is escaped.
 */
import { numbered } from "../common/Numbering.js"
import type { OsCount, Plan } from "./Domain.js"
import {
  gateText,
  humanDuration,
  limitLines,
  offset,
  plural,
  scheduleLine,
  shortHash,
  skipLabels,
  summaryLine,
  targetText,
  transitionsText
} from "./ReportFormat.js"

/** Escapes text for HTML element content and quoted attribute values alike. */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[char]!)

const esc = escapeHtml

/** Numbers in SVG attributes: at most two decimals, so the file stays small and stable. */
const n = (value: number): string => String(Math.round(value * 100) / 100)

// ---------------------------------------------------------------------------------------------
// Colours: deprecated versions warm, supported ones cool, unknown grey.
// ---------------------------------------------------------------------------------------------

const warm = ["#b91c1c", "#ea580c", "#d97706", "#ca8a04"]
const cool = ["#0f766e", "#2563eb", "#4f46e5", "#0891b2"]
const endOfLife = "#7f1d1d"
const unknownColour = "#6b7280"

const osColours = (plan: Plan): ReadonlyMap<string, string> => {
  const colours = new Map<string, string>()
  let warmIndex = 0
  let coolIndex = 0
  for (const policy of plan.policies) {
    colours.set(policy.osVersion,
      policy.status === "end-of-life"
        ? endOfLife
        : policy.status === "deprecated"
          ? warm[warmIndex++ % warm.length]!
          : cool[coolIndex++ % cool.length]!)
  }
  for (const environment of plan.osMix) {
    for (const entry of [...environment.before, ...environment.after]) {
      if (!colours.has(entry.osVersion)) colours.set(entry.osVersion, unknownColour)
    }
  }
  return colours
}

/** White or near-black text, whichever reads better on a fill. */
const textOn = (fill: string): string => {
  const value = Number.parseInt(fill.slice(1), 16)
  const luminance = (0.299 * ((value >> 16) & 255) + 0.587 * ((value >> 8) & 255) + 0.114 * (value & 255)) / 255
  return luminance > 0.6 ? "#111827" : "#ffffff"
}

// ---------------------------------------------------------------------------------------------
// Chart: OS versions per environment, before and after
// ---------------------------------------------------------------------------------------------

const osChart = (plan: Plan, colours: ReadonlyMap<string, string>): string => {
  if (plan.osMix.length === 0) return `<p class="muted">The inventory has no live VMs.</p>`
  const width = 820
  const labelWidth = 130
  const countWidth = 80
  const barWidth = width - labelWidth - countWidth
  const barHeight = 22
  const groupHeight = barHeight * 2 + 26
  const height = plan.osMix.length * groupHeight + 10
  const bar = (counts: ReadonlyArray<OsCount>, y: number, label: string, environment: string): string => {
    const total = counts.reduce((sum, entry) => sum + entry.vms, 0)
    let x = labelWidth
    const segments = counts.map((entry) => {
      const segmentWidth = total === 0 ? 0 : (entry.vms / total) * barWidth
      const fill = colours.get(entry.osVersion) ?? unknownColour
      const share = total === 0 ? 0 : Math.round((entry.vms / total) * 100)
      const caption = `${entry.osVersion.replace(/^ubuntu-/, "")} · ${entry.vms.toLocaleString("en-US")}`
      // Only where it fits (about 7px a character at this size); the tooltip has it anyway.
      const text = segmentWidth > caption.length * 7.2 + 10
        ? `<text x="${n(x + 6)}" y="${n(y + barHeight / 2 + 4)}" style="fill:${textOn(fill)}" class="seg">${esc(caption)}</text>`
        : ""
      const out = `<g><title>${esc(`${environment} ${label}: ${entry.osVersion}, ${entry.vms} VMs (${share}%)`)}</title>` +
        `<rect x="${n(x)}" y="${n(y)}" width="${n(segmentWidth)}" height="${barHeight}" fill="${fill}"/>${text}</g>`
      x += segmentWidth
      return out
    })
    return `<text x="${labelWidth - 8}" y="${n(y + barHeight / 2 + 4)}" text-anchor="end" class="axis">${label}</text>${segments.join("")}` +
      `<text x="${width - countWidth + 8}" y="${n(y + barHeight / 2 + 4)}" class="axis">${total.toLocaleString("en-US")} VMs</text>`
  }
  const groups = plan.osMix.map((environment, index) => {
    const y = index * groupHeight + 4
    return `<text x="0" y="${n(y + barHeight / 2 + 4)}" class="env">${esc(environment.environment)}</text>` +
      bar(environment.before, y, "now", environment.environment) +
      bar(environment.after, y + barHeight + 4, "after", environment.environment)
  })
  const seen = [...colours.keys()].filter((os) => plan.osMix.some((environment) => [...environment.before, ...environment.after].some((entry) => entry.osVersion === os)))
  const status = new Map<string, string>(plan.policies.map((policy) => [policy.osVersion, policy.status]))
  const legend = seen.map((os) =>
    `<span class="key"><span class="swatch" style="background:${colours.get(os)}"></span>${esc(os)} <span class="muted">${esc(status.get(os) ?? "no policy")}</span></span>`
  ).join("")
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="OS versions per environment, now and after the plan">${groups.join("")}</svg>` +
    `<div class="legend">${legend}</div>`
}

// ---------------------------------------------------------------------------------------------
// Chart: the waves on a timeline, and how many steps run at once
// ---------------------------------------------------------------------------------------------

const tickSteps = [300, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 1_209_600, 2_592_000]

/** Steps running over time, bucketed (the maximum of each bucket) so a run of 100,000 steps still draws as a few hundred points. */
const runningProfile = (plan: Plan, total: number, buckets: number): ReadonlyArray<number> => {
  const profile = new Array<number>(buckets).fill(0)
  const events: Array<readonly [number, number]> = []
  for (const step of plan.steps) {
    if (step.estimatedEnd > step.estimatedStart) events.push([step.estimatedStart, 1], [step.estimatedEnd, -1])
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let running = 0
  let index = 0
  for (let bucket = 0; bucket < buckets; bucket++) {
    const from = (bucket / buckets) * total
    const to = ((bucket + 1) / buckets) * total
    let peak = running
    while (index < events.length && events[index]![0] < to) {
      running += events[index]![1]
      if (events[index]![0] >= from) peak = Math.max(peak, running)
      index++
    }
    profile[bucket] = Math.max(peak, running)
  }
  return profile
}

const timeline = (plan: Plan): string => {
  if (plan.waves.length === 0) return `<p class="muted">Nothing to schedule.</p>`
  const width = 820
  const labelWidth = 190
  const plotWidth = width - labelWidth - 20
  const rowHeight = 28
  const top = 24
  const total = Math.max(plan.estimate.totalSeconds, 1)
  const x = (seconds: number) => labelWidth + (seconds / total) * plotWidth
  const wavesHeight = plan.waves.length * rowHeight
  const areaTop = top + wavesHeight + 26
  const areaHeight = 70
  const height = areaTop + areaHeight + 30

  const tick = tickSteps.find((step) => total / step <= 8) ?? tickSteps[tickSteps.length - 1]!
  const ticks: Array<string> = []
  for (let at = 0; at <= total; at += tick) {
    ticks.push(`<line x1="${n(x(at))}" x2="${n(x(at))}" y1="${top - 6}" y2="${areaTop + areaHeight}" class="grid"/>` +
      `<text x="${n(x(at))}" y="${top - 10}" text-anchor="middle" class="axis">${esc(offset(at))}</text>`)
  }

  const rows = plan.waves.map((wave, index) => {
    const y = top + index * rowHeight
    const barX = x(wave.estimatedStart)
    const barWidth = Math.max(x(wave.estimatedEnd) - barX, 2)
    const label = `${plural(wave.fleets.length, "fleet")} · ${plural(wave.vms, "VM")} · ${humanDuration(wave.estimatedEnd - wave.estimatedStart)}`
    // The label goes inside the bar if it fits, else after it, else (a late, long bar) before it.
    const labelLength = label.length * 6.2
    const inside = barWidth > labelLength + 12
    const after = barX + barWidth + 6 + labelLength <= width
    const labelX = inside ? barX + 8 : after ? barX + barWidth + 6 : barX - 12
    const gate = wave.gate === "approval"
      ? `<g><title>approval needed before ${esc(wave.name)}</title><path d="M${n(barX)} ${n(y + 2)} l7 9 l-7 9 l-7 -9 z" class="gate"/></g>`
      : ""
    return `<g><title>${esc(`${wave.name}: ${label}, ${offset(wave.estimatedStart)} to ${offset(wave.estimatedEnd)}`)}</title>` +
      `<text x="${labelWidth - 12}" y="${n(y + 15)}" text-anchor="end" class="env">${esc(wave.name)}</text>` +
      `<rect x="${n(barX)}" y="${n(y + 3)}" width="${n(barWidth)}" height="${rowHeight - 8}" rx="3" class="${wave.kind}"/>` +
      `<text x="${n(labelX)}" y="${n(y + 15)}"${inside || after ? "" : " text-anchor=\"end\""} class="${inside ? "inbar" : "axis"}">${esc(label)}</text></g>${gate}`
  })

  const buckets = 300
  const profile = runningProfile(plan, total, buckets)
  const peak = Math.max(1, ...profile)
  const points = profile.flatMap((value, bucket) => {
    const yValue = areaTop + areaHeight - (value / peak) * areaHeight
    return [`${n(labelWidth + (bucket / buckets) * plotWidth)},${n(yValue)}`, `${n(labelWidth + ((bucket + 1) / buckets) * plotWidth)},${n(yValue)}`]
  })
  const area = `<polygon points="${n(labelWidth)},${areaTop + areaHeight} ${points.join(" ")} ${n(labelWidth + plotWidth)},${areaTop + areaHeight}" class="area"/>` +
    `<text x="${labelWidth - 12}" y="${areaTop + 12}" text-anchor="end" class="env">steps running</text>` +
    `<text x="${labelWidth - 12}" y="${areaTop + 28}" text-anchor="end" class="axis">peak ${peak}</text>` +
    `<line x1="${labelWidth}" x2="${labelWidth + plotWidth}" y1="${areaTop + areaHeight}" y2="${areaTop + areaHeight}" class="baseline"/>`

  return `<svg class="chart" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="Waves on a timeline">` +
    `${ticks.join("")}${rows.join("")}${area}</svg>` +
    `<div class="legend"><span class="key"><span class="swatch canary-bg"></span>canary</span><span class="key"><span class="swatch rollout-bg"></span>rollout</span>` +
    `<span class="key"><span class="swatch gate-bg"></span>approval gate (takes no time in the estimate)</span></div>`
}

// ---------------------------------------------------------------------------------------------
// Tables and the page
// ---------------------------------------------------------------------------------------------

const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, numeric: ReadonlyArray<number> = []): string =>
  `<table><thead><tr>${headers.map((header, index) => `<th${numeric.includes(index) ? " class=\"num\"" : ""}>${esc(header)}</th>`).join("")}</tr></thead>` +
  `<tbody>${rows.map((row) => `<tr>${row.map((cell, index) => `<td${numeric.includes(index) ? " class=\"num\"" : ""}>${cell}</td>`).join("")}</tr>`).join("")}</tbody></table>`

const foldable = (summary: string, body: string, fold: boolean): string =>
  fold ? `<details><summary>${esc(summary)}</summary>${body}</details>` : body

const card = (value: string, label: string, tone = ""): string =>
  `<div class="card ${tone}"><div class="value">${esc(value)}</div><div class="label">${esc(label)}</div></div>`

const style = `
:root { --fg:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#ffffff; --panel:#f9fafb; --accent:#2563eb; }
@media (prefers-color-scheme: dark) { :root { --fg:#e5e7eb; --muted:#9ca3af; --line:#374151; --bg:#111827; --panel:#1f2937; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.lede { margin: 0 0 8px; } .meta, .muted { color: var(--muted); } code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.summary { font-weight: 600; margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
.card .value { font-size: 22px; font-weight: 700; } .card .label { color: var(--muted); font-size: 12px; }
.card.warn .value { color: #d97706; } .card.good .value { color: #0f766e; }
.chart { display: block; margin: 8px 0; } .chart text { font: 12px system-ui, sans-serif; fill: var(--fg); }
.chart text.seg, .chart text.inbar { font-weight: 600; } .chart text.inbar { fill: #ffffff; }
.chart text.axis { fill: var(--muted); font-size: 11px; } .chart text.env { font-weight: 600; }
.chart .grid { stroke: var(--line); stroke-dasharray: 2 3; } .chart .baseline { stroke: var(--muted); }
.chart .canary { fill: #7c3aed; } .chart .rollout { fill: #2563eb; } .chart .gate { fill: #f59e0b; stroke: #92400e; }
.chart .area { fill: #93c5fd; stroke: #2563eb; stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 18px; font-size: 12px; }
.key { display: inline-flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
.canary-bg { background: #7c3aed; } .rollout-bg { background: #2563eb; } .gate-bg { background: #f59e0b; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); position: sticky; top: 0; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
details > summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
.bar { background: #f59e0b; height: 10px; border-radius: 2px; display: inline-block; vertical-align: middle; }
.warnings { background: #fffbeb; color: #78350f; border: 1px solid #fcd34d; border-radius: 8px; padding: 8px 16px; }
.status-end-of-life { color: #b91c1c; font-weight: 600; } .status-deprecated { color: #d97706; font-weight: 600; } .status-supported { color: #0f766e; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
`

export const renderHtml = (plan: Plan): string => {
  const colours = osColours(plan)
  const totals = plan.totals
  const schedule = scheduleLine(plan)
  const parts: Array<string> = []

  parts.push(
    `<header><h1>Recycle plan: ${esc(plan.name)}</h1>`,
    plan.description === undefined ? "" : `<p class="lede">${esc(plan.description)}</p>`,
    `<p class="meta">As of <code>${esc(plan.asOf)}</code> · target: <strong>${esc(targetText(plan))}</strong> · from: ${esc(plan.sourceOsVersions.join(", ") || "—")}<br>` +
      `plan <code>${esc(shortHash(plan.planHash))}</code> · spec <code>${esc(shortHash(plan.specHash))}</code> · inventory <code>${esc(shortHash(plan.inventoryDigest))}</code></p></header>`,
    `<p class="summary">${esc(summaryLine(plan))}</p>`,
    schedule === undefined ? "" : `<p>Schedule: ${esc(schedule)}</p>`,
    `<section class="cards">`,
    card(totals.vmsMoving.toLocaleString("en-US"), "VMs replaced", "good"),
    card(totals.fleetsMoving.toLocaleString("en-US"), "fleets moving"),
    card(totals.fleetsSkipped.toLocaleString("en-US"), `fleets skipped (${totals.vmsSkipped.toLocaleString("en-US")} VMs)`, totals.fleetsSkipped > 0 ? "warn" : ""),
    card(String(totals.waves), "waves"),
    card(humanDuration(plan.estimate.totalSeconds), "estimated run time"),
    card(String(plan.estimate.approvals), "approvals"),
    `</section>`
  )
  if (plan.warnings.length > 0) {
    parts.push(`<div class="warnings"><strong>Warnings</strong><ul>${plan.warnings.map((warning) => `<li>${esc(warning)}</li>`).join("")}</ul></div>`)
  }
  parts.push(
    `<section><h2>OS versions per environment</h2><p class="muted">Live VMs of the whole inventory, now and once this plan has run.</p>${osChart(plan, colours)}</section>`,
    `<section><h2>Timeline</h2><p class="muted">The estimate: every limit applied, each step ${esc(humanDuration(plan.estimate.stepSeconds))} ` +
      `(create ${esc(humanDuration(plan.estimate.createSeconds))}, bake ${esc(humanDuration(plan.estimate.bakeSeconds))}, decommission ${esc(humanDuration(plan.estimate.decommissionSeconds))}).</p>${timeline(plan)}</section>`
  )
  if (totals.transitions.length > 0) {
    parts.push(`<section><h2>Transitions</h2>${table(["From", "To", "VMs"], totals.transitions.map((t) => [esc(t.from), esc(t.to), String(t.vms)]), [2])}</section>`)
  }
  parts.push(`<section><h2>Limits in force</h2><ul>${limitLines(plan).map((line) => `<li>${esc(line)}</li>`).join("")}</ul></section>`)
  if (plan.waves.length > 0) {
    parts.push(
      `<section><h2>Waves</h2>${table(
        ["#", "Wave", "Gate", "Fleets", "VMs", "Start", "End"],
        plan.waves.map((wave) => [numbered(wave.index), esc(wave.name), esc(gateText(wave.gate)), String(wave.fleets.length), String(wave.vms), esc(offset(wave.estimatedStart)), esc(offset(wave.estimatedEnd))]),
        [0, 3, 4, 5, 6]
      )}</section>`,
      `<section><h2>Fleets that move</h2>${foldable(`${plural(plan.fleets.length, "fleet")}`, table(
        ["Wave", "Fleet", "VMs / size", "From → to (VMs)", "Surge", "Unavailable", "At once", "Start", "End"],
        plan.fleets.map((fleet) => [
          numbered(fleet.wave),
          `<code>${esc(fleet.id)}</code>`,
          `${fleet.steps} / ${fleet.size}`,
          esc(transitionsText(fleet.transitions)),
          String(fleet.limits.surge),
          String(fleet.limits.unavailable),
          String(fleet.limits.concurrency),
          esc(offset(fleet.estimatedStart)),
          esc(offset(fleet.estimatedEnd))
        ]),
        [0, 2, 4, 5, 6, 7, 8]
      ), plan.fleets.length > 40)}</section>`
    )
  }
  if (plan.skipped.length > 0) {
    const most = Math.max(...totals.skippedByReason.map((entry) => entry.fleets))
    const reasons = totals.skippedByReason.map((entry) => [
      esc(skipLabels[entry.code]),
      `<code>${esc(entry.code)}</code>`,
      String(entry.fleets),
      `<span class="bar" style="width:${n((entry.fleets / most) * 200)}px"></span>`
    ])
    parts.push(
      `<section><h2>Skipped fleets</h2>${table(["Reason", "Code", "Fleets", ""], reasons, [2])}` +
        foldable(`${plural(plan.skipped.length, "skipped fleet")}`, table(
          ["Fleet", "VMs", "Would move", "Reasons"],
          plan.skipped.map((fleet) => [
            `<code>${esc(fleet.id)}</code>`,
            String(fleet.vms),
            esc(transitionsText(fleet.transitions)),
            fleet.reasons.map((reason) => `<strong>${esc(reason.code)}</strong>: ${esc(reason.message)}`).join("<br>")
          ]),
          [1]
        ), plan.skipped.length > 40) +
        `</section>`
    )
  }
  if (plan.policies.length > 0) {
    parts.push(`<section><h2>Deprecation policies</h2>${table(
      ["OS", "Status", "Deprecated from", "End of life", "Replaced by", "Note"],
      plan.policies.map((policy) => [
        `<span class="key"><span class="swatch" style="background:${colours.get(policy.osVersion) ?? unknownColour}"></span>${esc(policy.osVersion)}</span>`,
        `<span class="status-${esc(policy.status)}">${esc(policy.status)}</span>`,
        esc(policy.deprecatedFrom),
        esc(policy.endOfLife),
        esc(policy.resolvedReplacement ?? policy.replacement ?? "—"),
        // The link is shown as text, not made a link: the report must not point anywhere on its own.
        esc([policy.note, policy.link].filter((text) => text !== undefined).join(" "))
      ])
    )}</section>`)
  }
  parts.push(`<footer>fleet planner · dry run: nothing was changed · plan ${esc(plan.planHash)}</footer>`)

  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>Recycle plan: ${esc(plan.name)}</title><style>${style}</style></head><body>\n${parts.filter((part) => part !== "").join("\n")}\n</body></html>\n`
}
