import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { waitForRequest } from "../../src/client/Client.js"
import { RequestId } from "../../src/vms/Domain.js"
import { startFleet } from "../support/Fleet.js"
import { field, request, vmRequestBody } from "./support.js"

/** The value of one sample line, e.g. `fleet_vms{state="ready"}`. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe("/metrics", () => {
  it.scopedLive("exposes HTTP, proctor, reconciler and database gauges in Prometheus text format", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      const accepted = yield* request(fleet, "POST", "/v1/vm-requests", { body: vmRequestBody({ count: 3 }) })
      expect(accepted.status).toBe(202)
      yield* waitForRequest(fleet.client, RequestId.make(field(accepted, "id") as string), {
        timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis"
      })
      for (let index = 0; index < 3; index++) expect((yield* request(fleet, "GET", "/v1/vms/not-a-uuid")).status).toBe(400)
      // A path served with another method is a 405 that says which methods it takes; an unknown one a 404.
      const wrongMethod = yield* request(fleet, "DELETE", "/v1/vms")
      expect([wrongMethod.status, wrongMethod.headers.get("allow"), wrongMethod.json]).toEqual([
        405, "GET", { _tag: "MethodNotAllowed", message: "DELETE is not served at /v1/vms: it takes GET" }
      ])
      expect((yield* request(fleet, "GET", "/v1/nothing-here")).status).toBe(404)

      const scraped = yield* request(fleet, "GET", "/metrics")
      expect(scraped.status).toBe(200)
      expect(scraped.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
      const text = scraped.text
      // Every sample line is `name{labels} value`; every family has HELP and TYPE.
      for (const line of text.trim().split("\n")) {
        expect(line).toMatch(/^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf))$/)
      }
      expect(text).toContain("# TYPE fleet_http_requests_total counter")
      // Effect's count of fibers alive goes down as well as up: a gauge.
      expect(text).toContain("# TYPE effect_fiber_active gauge")
      expect(text).toContain("# TYPE fleet_http_request_duration_seconds histogram")
      // By route template, not by URL.
      expect(sample(text, 'fleet_http_requests_total{method="GET",route="/v1/vms/:id",status="400"}')).toBeGreaterThanOrEqual(3)
      expect(sample(text, 'fleet_http_requests_total{method="POST",route="/v1/vm-requests",status="202"}')).toBeGreaterThanOrEqual(1)
      expect(text).not.toContain("not-a-uuid")
      // Counted as answered, not as the router's failure would be.
      expect(sample(text, 'fleet_http_requests_total{method="DELETE",route="/v1/vms",status="405"}')).toBeGreaterThanOrEqual(1)
      expect(sample(text, 'fleet_http_requests_total{method="GET",route="unmatched",status="404"}')).toBeGreaterThanOrEqual(1)
      expect(text).not.toContain('route="unmatched",status="500"')
      expect(sample(text, 'fleet_http_request_duration_seconds_bucket{method="GET",route="/v1/vms/:id",status="400",le="+Inf"}'))
        .toBe(sample(text, 'fleet_http_request_duration_seconds_count{method="GET",route="/v1/vms/:id",status="400"}'))
      expect(sample(text, 'fleet_proctor_calls_total{operation="submit",outcome="ok"}')).toBeGreaterThanOrEqual(3)
      expect(sample(text, 'fleet_proctor_calls_total{operation="status",outcome="ok"}')).toBeGreaterThanOrEqual(1)
      expect(sample(text, "fleet_reconciler_lag_seconds_count")).toBeGreaterThanOrEqual(3)
      // Read from this fleet's database at scrape time.
      expect(sample(text, 'fleet_vms{state="ready"}')).toBe(3)
      expect(sample(text, 'fleet_vms{state="failed"}')).toBe(0)
      expect(sample(text, 'fleet_executions_in_flight{kind="create"}')).toBe(0)
      expect(sample(text, 'fleet_runs{state="running"}')).toBe(0)
      expect(sample(text, 'fleet_steps{state="pending"}')).toBe(0)
    }))
})
