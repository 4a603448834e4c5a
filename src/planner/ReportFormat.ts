/** Formatting shared by the plan reports. */
import { type CountOrPercent, formatCountOrPercent, type Plan, type SkipCode, type Transition } from "./Domain.js"

/** A duration for people: the two largest units, "1d 6h", "2h 30m", "45m", "30s". */
export const humanDuration = (seconds: number): string => {
  if (seconds <= 0) return "0m"
  const parts: Array<string> = []
  let rest = Math.round(seconds)
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const) {
    const count = Math.floor(rest / size)
    rest -= count * size
    if (count > 0) parts.push(`${count}${unit}`)
  }
  return parts.slice(0, 2).join(" ")
}

/** A time in the run, from its start: "+0m", "+5h 30m". */
export const offset = (seconds: number): string => `+${humanDuration(seconds)}`

export const plural = (count: number, one: string, many = `${one}s`): string => `${count.toLocaleString("en-US")} ${count === 1 ? one : many}`

export const transitionsText = (transitions: ReadonlyArray<Transition>): string =>
  transitions.map((transition) => `${transition.from} → ${transition.to} (${transition.vms})`).join(", ")

export const limitText = (value: CountOrPercent, rounding: "up" | "down"): string =>
  value.kind === "percent" ? `${formatCountOrPercent(value)} (rounded ${rounding})` : formatCountOrPercent(value)

export const skipLabels: Readonly<Record<SkipCode, string>> = {
  "no-proc": "no proc for the target OS",
  "no-replacement": "no replacement version",
  "target-end-of-life": "target past its end of life",
  "vms-in-flight": "VMs still being created or removed",
  "unhealthy-vms": "failed or timed-out VMs",
  "no-progress": "limits allow no progress"
}

export const targetText = (plan: Plan): string => plan.target === "replacement" ? "each policy's replacement" : plan.target

export const shortHash = (hash: string): string => hash.slice(0, 12)

export const gateText = (gate: Plan["waves"][number]["gate"]): string =>
  gate === "none" ? "—" : gate === "approval" ? "approval" : "previous wave complete"

/** One line per limit in force, shared by every format. */
export const limitLines = (plan: Plan): ReadonlyArray<string> => {
  const limits = plan.limits
  const budget = limits.failureBudget
  return [
    `maxSurge ${limitText(limits.maxSurge, "up")} and maxUnavailable ${limitText(limits.maxUnavailable, "down")} per fleet`,
    `at most ${plural(limits.maxFleetsInParallel, "fleet")} at once and ${plural(limits.maxInFlight, "proctor execution")} in flight`,
    `environments in order: ${limits.environmentOrder.join(" → ")}, each after the previous is complete${limits.environmentGate === "approval" ? " and approved" : ""}`,
    limits.canary === undefined
      ? "no canary"
      : `canary: the ${limits.canary.fleets === 1 ? "smallest fleet" : `${limits.canary.fleets} smallest fleets`} of ` +
        `${limits.canary.scope === "every-environment" ? "every environment" : "the first environment"}, then an approval`,
    `bake time ${humanDuration(limits.bakeSeconds)} before an old VM is decommissioned`,
    budget.allowedFailures === 0
      ? `failure budget ${formatCountOrPercent(budget.max)}${budget.max.kind === "percent" ? ` of ${plural(plan.totals.steps, "step")}` : ""}: ` +
        `no failed step tolerated; the first failure ${budget.action === "pause" ? "pauses" : "aborts"} the run`
      : `failure budget ${formatCountOrPercent(budget.max)}${budget.max.kind === "percent" ? ` of ${plural(plan.totals.steps, "step")}` : ""} = ` +
        `${plural(budget.allowedFailures, "failed step")} tolerated; one more ${budget.action === "pause" ? "pauses" : "aborts"} the run`
  ]
}

/** An instant as local time in a zone, "Tue 2025-09-02 02:00" — the way the schedule was written. */
export const localTime = (iso: string, timeZone: string): string => {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone, weekday: "short", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"
  }).formatToParts(new Date(iso))
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((entry) => entry.type === type)?.value ?? ""
  return `${part("weekday")} ${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}`
}

export const scheduleLine = (plan: Plan): string | undefined => {
  const schedule = plan.estimate.schedule
  if (schedule === undefined) return undefined
  const next = schedule.nextWindows.length === 0
    ? ""
    : `; next: ${schedule.nextWindows.slice(0, 3).map((iso) => localTime(iso, schedule.timeZone)).join(", ")}`
  return `runs in ${humanDuration(schedule.windowSeconds)} windows at "${schedule.cron}" (${schedule.timeZone}): about ${plural(schedule.windowsNeeded, "window")}${next}`
}

export const summaryLine = (plan: Plan): string => {
  const totals = plan.totals
  if (totals.fleetsMatched === 0) return "Nothing to do: no fleet matches the selection."
  const approvals = plan.estimate.approvals === 0 ? "" : `, plus ${plural(plan.estimate.approvals, "approval")}`
  return `${plural(totals.fleetsMoving, "fleet")} move (${plural(totals.vmsMoving, "VM")}) in ${plural(totals.waves, "wave")}; ` +
    `${plural(totals.fleetsSkipped, "fleet")} skipped (${plural(totals.vmsSkipped, "VM")}); ` +
    `estimated ${humanDuration(plan.estimate.totalSeconds)} of run time${approvals}.`
}
