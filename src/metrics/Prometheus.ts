import { Effect, Metric, MetricKeyType, type MetricPair, MetricState, Option } from "effect"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")
const formatNumber = (value: number | bigint) =>
  typeof value === "bigint" ? value.toString()
    : Number.isNaN(value) ? "NaN"
    : value === Infinity ? "+Inf"
    : value === -Infinity ? "-Inf"
    : String(value)

const labels = (pairs: ReadonlyArray<readonly [string, string]>) =>
  pairs.length === 0 ? "" : `{${pairs.map(([key, value]) => `${metricName(key)}="${escapeLabel(value)}"`).join(",")}}`

interface Family {
  type: "counter" | "gauge" | "histogram" | "summary"
  help: string
  lines: Array<string>
}

/** Renders metric pairs in Prometheus' text exposition format (version 0.0.4). */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const family = (name: string, type: Family["type"], help: string) => {
    let found = families.get(name)
    if (found === undefined) {
      found = { type, help, lines: [] }
      families.set(name, found)
    }
    return found
  }
  const key = (pair: MetricPair.MetricPair.Untyped) =>
    `${pair.metricKey.name} ${pair.metricKey.tags.map((tag) => `${tag.key}=${tag.value}`).join(",")}`
  const sorted = pairs.map((pair) => [key(pair), pair] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  for (const [, pair] of sorted) {
    const name = metricName(pair.metricKey.name)
    const help = Option.getOrElse(pair.metricKey.description, () => name)
    const tags = pair.metricKey.tags.map((tag) => [tag.key, tag.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      // A counter Effect lets go down (not incremental: effect_fiber_active) is what Prometheus calls a gauge.
      const counts = MetricKeyType.isCounterKey(pair.metricKey.keyType) && pair.metricKey.keyType.incremental
      family(name, counts ? "counter" : "gauge", help).lines.push(`${name}${labels(tags)} ${formatNumber(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", help).lines.push(`${name}${labels(tags)} ${formatNumber(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const lines = family(name, "histogram", help).lines
      let sawInfinity = false
      for (const [boundary, count] of state.buckets) {
        if (boundary === Infinity) sawInfinity = true
        lines.push(`${name}_bucket${labels([...tags, ["le", formatNumber(boundary)]])} ${count}`)
      }
      if (!sawInfinity) lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
      lines.push(`${name}_sum${labels(tags)} ${formatNumber(state.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isSummaryState(state)) {
      const lines = family(name, "summary", help).lines
      for (const [quantile, value] of state.quantiles) {
        lines.push(`${name}${labels([...tags, ["quantile", String(quantile)]])} ${formatNumber(Option.getOrElse(value, () => NaN))}`)
      }
      lines.push(`${name}_sum${labels(tags)} ${formatNumber(state.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const lines = family(`${name}_total`, "counter", help).lines
      for (const [value, count] of state.occurrences) lines.push(`${name}_total${labels([...tags, ["value", value]])} ${count}`)
    }
  }
  const out: Array<string> = []
  for (const [name, { help, lines, type }] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`, ...lines)
  }
  return out.join("\n") + "\n"
}

/** Everything in Effect's global metric registry, as Prometheus text. */
export const renderRegistry: Effect.Effect<string> = Effect.map(Metric.snapshot, render)
