/** A span of time [from, to): an interval ending at t does not overlap one starting at t. */
export interface Interval {
  readonly from: number
  readonly to: number
}

/** The most intervals open at one instant (empty intervals count for nothing). */
export const peakOverlap = (intervals: ReadonlyArray<Interval>): number => {
  const edges = intervals
    .filter((interval) => interval.to > interval.from)
    .flatMap((interval) => [[interval.from, 1], [interval.to, -1]] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let current = 0
  let peak = 0
  for (const [, delta] of edges) {
    current += delta
    peak = Math.max(peak, current)
  }
  return peak
}
