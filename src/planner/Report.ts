/**
 * Dry-run reports of a plan: `text` for a terminal, `markdown` for a pull request, `json` (the
 * encoded Plan, the same document that is stored and served), `html` (one self-contained page).
 * Pure: plan in, string out.
 */
import { Schema } from "effect"
import { numbered } from "../common/Numbering.js"
import { Plan } from "./Domain.js"
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
import { renderHtml } from "./ReportHtml.js"

/** The report formats, as a schema so a CLI flag or a query parameter can be decoded with it. */
export const ReportFormat = Schema.Literal("text", "markdown", "json", "html")
export type ReportFormat = typeof ReportFormat.Type
export const reportFormats: ReadonlyArray<ReportFormat> = ReportFormat.literals

type Align = "left" | "right"

/** A plain-text table with columns padded to their widest cell. */
const textTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, align: ReadonlyArray<Align>): string => {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, column) => align[column] === "right" ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd()
  // A last, left-aligned column of free text (reasons) can be very wide; its rule need not be.
  const rules = widths.map((width, column) =>
    "-".repeat(column === widths.length - 1 && align[column] === "left" ? Math.min(width, Math.max(headers[column]!.length, 40)) : width))
  return [line(headers), line(rules), ...rows.map(line)].map((row) => `  ${row}`).join("\n")
}

/** Text from the input (names, descriptions) must not move the cursor or change colours in a terminal. */
const printable = (text: string): string => text.replace(/\p{Cc}/gu, "?")

const fleetRows = (plan: Plan) =>
  plan.fleets.map((fleet) => [
    numbered(fleet.wave),
    printable(fleet.id),
    `${fleet.steps}/${fleet.size}`,
    transitionsText(fleet.transitions),
    String(fleet.limits.surge),
    String(fleet.limits.unavailable),
    String(fleet.limits.concurrency),
    offset(fleet.estimatedStart),
    offset(fleet.estimatedEnd)
  ])

const waveRows = (plan: Plan) =>
  plan.waves.map((wave) => [
    numbered(wave.index),
    printable(wave.name),
    gateText(wave.gate),
    String(wave.fleets.length),
    String(wave.vms),
    offset(wave.estimatedStart),
    offset(wave.estimatedEnd)
  ])

const policyRows = (plan: Plan) =>
  plan.policies.map((policy) => [
    policy.osVersion,
    policy.status,
    policy.deprecatedFrom,
    policy.endOfLife,
    policy.resolvedReplacement ?? policy.replacement ?? "—"
  ])

const renderText = (plan: Plan): string => {
  const out: Array<string> = []
  const section = (title: string, body: string) => out.push("", title, body)
  out.push(`Recycle plan: ${printable(plan.name)}`)
  if (plan.description !== undefined) out.push(`  ${printable(plan.description)}`)
  out.push(
    `  as of ${plan.asOf} · target: ${targetText(plan)} · from: ${plan.sourceOsVersions.join(", ") || "—"}`,
    `  plan ${shortHash(plan.planHash)} · spec ${shortHash(plan.specHash)} · inventory ${shortHash(plan.inventoryDigest)}`,
    "",
    summaryLine(plan)
  )
  const schedule = scheduleLine(plan)
  if (schedule !== undefined) out.push(`Schedule: ${schedule}`)
  if (plan.totals.transitions.length > 0) {
    section("Transitions", textTable(["FROM", "TO", "VMS"], plan.totals.transitions.map((t) => [t.from, t.to, String(t.vms)]), ["left", "left", "right"]))
  }
  section("Limits", limitLines(plan).map((line) => `  - ${line}`).join("\n"))
  if (plan.waves.length > 0) {
    section("Waves", textTable(["#", "WAVE", "GATE", "FLEETS", "VMS", "START", "END"], waveRows(plan), ["right", "left", "left", "right", "right", "right", "right"]))
    section(
      "Fleets that move",
      textTable(
        ["WAVE", "FLEET", "VMS/SIZE", "FROM → TO (VMS)", "SURGE", "UNAVAIL", "AT ONCE", "START", "END"],
        fleetRows(plan),
        ["right", "left", "right", "left", "right", "right", "right", "right", "right"]
      )
    )
  }
  if (plan.skipped.length > 0) {
    const counts = plan.totals.skippedByReason.map((entry) => `${skipLabels[entry.code]}: ${entry.fleets}`).join("; ")
    section(
      `Skipped fleets (${counts})`,
      textTable(
        ["FLEET", "VMS", "REASONS"],
        plan.skipped.map((fleet) => [printable(fleet.id), String(fleet.vms), fleet.reasons.map((reason) => `${reason.code}: ${printable(reason.message)}`).join("; ")]),
        ["left", "right", "left"]
      )
    )
  }
  if (plan.warnings.length > 0) section("Warnings", plan.warnings.map((warning) => `  ! ${printable(warning)}`).join("\n"))
  if (plan.policies.length > 0) {
    section(`Deprecation policies as of ${plan.asOf.slice(0, 10)}`, textTable(["OS", "STATUS", "DEPRECATED FROM", "END OF LIFE", "REPLACED BY"], policyRows(plan), ["left", "left", "left", "left", "left"]))
  }
  section(
    "Estimate",
    `  each step: create ${humanDuration(plan.estimate.createSeconds)} + bake ${humanDuration(plan.estimate.bakeSeconds)} + decommission ${humanDuration(plan.estimate.decommissionSeconds)}` +
      `\n  whole run: ${humanDuration(plan.estimate.totalSeconds)} under the limits above (approvals not counted)`
  )
  return `${out.join("\n")}\n`
}

/** A Markdown table cell: pipes, HTML and line breaks from input must not break the table or inject markup. */
const md = (text: string): string =>
  text
    .replace(/\\/g, "\\\\")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/([`*_[\]#|])/g, "\\$1")
    .replace(/[\r\n]+/g, " ")

const mdTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, align: ReadonlyArray<Align>): string =>
  [
    `| ${headers.join(" | ")} |`,
    `| ${align.map((side) => (side === "right" ? "---:" : ":---")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

/** Long tables fold away in a pull request. */
const folded = (summary: string, body: string, fold: boolean): string =>
  fold ? `<details><summary>${summary}</summary>\n\n${body}\n\n</details>` : body

const renderMarkdown = (plan: Plan): string => {
  const out: Array<string> = []
  out.push(`## Recycle plan: ${md(plan.name)}`, "")
  if (plan.description !== undefined) out.push(md(plan.description), "")
  out.push(
    `As of \`${plan.asOf}\` · target: **${md(targetText(plan))}** · from: ${plan.sourceOsVersions.map((os) => `\`${os}\``).join(", ") || "—"}  `,
    `plan \`${shortHash(plan.planHash)}\` · spec \`${shortHash(plan.specHash)}\` · inventory \`${shortHash(plan.inventoryDigest)}\``,
    "",
    `**${md(summaryLine(plan))}**`
  )
  const schedule = scheduleLine(plan)
  if (schedule !== undefined) out.push("", `Schedule: ${md(schedule)}`)
  if (plan.warnings.length > 0) out.push("", "> [!WARNING]", ...plan.warnings.map((warning) => `> - ${md(warning)}`))
  if (plan.totals.transitions.length > 0) {
    out.push("", "### Transitions", "", mdTable(["From", "To", "VMs"], plan.totals.transitions.map((t) => [`\`${t.from}\``, `\`${t.to}\``, String(t.vms)]), ["left", "left", "right"]))
  }
  out.push("", "### Limits", "", ...limitLines(plan).map((line) => `- ${md(line)}`))
  if (plan.waves.length > 0) {
    out.push(
      "",
      "### Waves",
      "",
      mdTable(["#", "Wave", "Gate", "Fleets", "VMs", "Start", "End"], waveRows(plan).map((row) => row.map(md)), ["right", "left", "left", "right", "right", "right", "right"]),
      "",
      "### Fleets that move",
      "",
      folded(
        `${plural(plan.fleets.length, "fleet")}`,
        mdTable(
          ["Wave", "Fleet", "VMs / size", "From → to (VMs)", "Surge", "Unavailable", "At once", "Start", "End"],
          fleetRows(plan).map((row) => row.map(md)),
          ["right", "left", "right", "left", "right", "right", "right", "right", "right"]
        ),
        plan.fleets.length > 30
      )
    )
  }
  if (plan.skipped.length > 0) {
    out.push(
      "",
      "### Skipped fleets",
      "",
      ...plan.totals.skippedByReason.map((entry) => `- ${md(skipLabels[entry.code])}: ${entry.fleets}`),
      "",
      folded(
        `${plural(plan.skipped.length, "skipped fleet")}`,
        mdTable(
          ["Fleet", "VMs", "Reasons"],
          plan.skipped.map((fleet) => [md(fleet.id), String(fleet.vms), fleet.reasons.map((reason) => `**${reason.code}**: ${md(reason.message)}`).join("<br>")]),
          ["left", "right", "left"]
        ),
        plan.skipped.length > 30
      )
    )
  }
  if (plan.policies.length > 0) {
    out.push("", "### Deprecation policies", "", mdTable(["OS", "Status", "Deprecated from", "End of life", "Replaced by"], policyRows(plan).map((row) => row.map(md)), ["left", "left", "left", "left", "left"]))
  }
  out.push(
    "",
    "### Estimate",
    "",
    `Each step: create ${humanDuration(plan.estimate.createSeconds)} + bake ${humanDuration(plan.estimate.bakeSeconds)} + decommission ${humanDuration(plan.estimate.decommissionSeconds)}. ` +
      `Whole run: **${humanDuration(plan.estimate.totalSeconds)}** under the limits above (approvals not counted).`
  )
  return `${out.join("\n")}\n`
}

const encodePlan = Schema.encodeSync(Plan)

/** Renders a plan in one of the report formats. */
export const renderPlan = (plan: Plan, format: ReportFormat): string => {
  switch (format) {
    case "text":
      return renderText(plan)
    case "markdown":
      return renderMarkdown(plan)
    case "json":
      return `${JSON.stringify(encodePlan(plan), null, 2)}\n`
    case "html":
      return renderHtml(plan)
  }
}
