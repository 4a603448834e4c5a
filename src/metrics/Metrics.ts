import { Metric, MetricBoundaries, MetricLabel } from "effect"
import { remembered } from "../common/Remembered.js"

/**
 * fleet's metrics, in Effect's global metric registry; `/metrics` renders the registry in
 * Prometheus' text format (Prometheus.ts). Gauges read from the database are set at scrape
 * time (Collectors.ts). Names follow Prometheus' conventions: `_total` counters, `_seconds`.
 */

const latencyBoundaries = MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

export const httpRequests = Metric.counter("fleet_http_requests_total", {
  description: "HTTP requests answered, by method, route (the endpoint's path template) and status",
  incremental: true
})

export const httpDuration = Metric.histogram(
  "fleet_http_request_duration_seconds",
  latencyBoundaries,
  "Time to answer an HTTP request, by method, route and status"
)

export const proctorCalls = Metric.counter("fleet_proctor_calls_total", {
  description: "Calls to proctor by operation (submit, status, metadata, ping) and outcome (ok, transient, permanent, not_found)",
  incremental: true
})

export const proctorDuration = Metric.histogram(
  "fleet_proctor_call_duration_seconds",
  latencyBoundaries,
  "Time of a call to proctor, by operation"
)

export const reconcilerLag = Metric.histogram(
  "fleet_reconciler_lag_seconds",
  MetricBoundaries.fromIterable([0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300]),
  "How late due executions are picked up: claimed at minus due at"
)

export const vmsByState = Metric.gauge("fleet_vms", { description: "VMs by state (read from the database at scrape time)" })
export const executionsInFlight = Metric.gauge("fleet_executions_in_flight", {
  description: "Proctor executions not finished (pending, submitting, running), by kind (read from the database at scrape time)"
})
export const runsByState = Metric.gauge("fleet_runs", { description: "Runs by state (read from the database at scrape time)" })
export const stepsByState = Metric.gauge("fleet_steps", { description: "Steps of runs by state (read from the database at scrape time)" })

/**
 * A set of labels as one array, the same array for the same values: a metric finds its series by
 * the identity of the array it is updated with, and builds (and hashes) a new key for any other.
 */
const labelSets = remembered((id) =>
  id.split("\u0001").map((pair) => {
    const [key, value] = pair.split("\u0000")
    return MetricLabel.make(key!, value!)
  }))
export const labelSet = (...pairs: ReadonlyArray<readonly [key: string, value: string]>): ReadonlyArray<MetricLabel.MetricLabel> =>
  labelSets(pairs.map(([key, value]) => `${key}\u0000${value}`).join("\u0001"))
