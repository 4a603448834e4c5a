import { Validator } from "@seriousme/openapi-schema-validator"
import { describe, expect, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import addFormats from "ajv-formats"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { waitForRequest } from "../../src/client/Client.js"
import { RequestId } from "../../src/vms/Domain.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"
import { repoRoot } from "../support/Paths.js"
import { type Answer, field, request, type RequestOptions, vmRequestBody } from "./support.js"

interface Operation {
  readonly responses: Record<string, { readonly content?: Record<string, { readonly schema: unknown }>; readonly headers?: unknown }>
  readonly parameters: ReadonlyArray<{ readonly name: string; readonly in: string }>
}
type Spec = {
  readonly openapi: string
  readonly info: { readonly version: string }
  readonly paths: Record<string, Record<string, Operation>>
  readonly components: Record<string, unknown>
}

interface Recorded {
  readonly method: string
  readonly path: string
  readonly answer: Answer
}

/** The operation of the spec that a method and a concrete path fall under. */
const operationOf = (spec: Spec, method: string, path: string): [string, Operation] | undefined => {
  const bare = path.split("?")[0]!
  for (const [template, operations] of Object.entries(spec.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`)
    const operation = operations[method.toLowerCase()]
    if (pattern.test(bare) && operation !== undefined) return [template, operation]
  }
  return undefined
}

describe("OpenAPI", () => {
  it.scopedLive("serves a valid OpenAPI document generated from FleetApi, and every answer of the suite matches it", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ settings: { FLEET_RATE_LIMIT: "2", FLEET_RATE_BURST: "60", FLEET_MAX_BODY_BYTES: "4096" } })
      const served = yield* request(fleet, "GET", "/openapi.json", { token: null })
      expect(served.status).toBe(200)
      const spec = served.json as Spec

      // An independent validator of the document itself.
      const validation = yield* Effect.promise(() => new Validator().validate(spec as unknown as Record<string, unknown>))
      expect(validation.errors ?? []).toEqual([])
      expect(validation.valid).toBe(true)
      expect(spec.openapi).toMatch(/^3\.1\./)
      // fleet's version, the package's.
      const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }
      expect(spec.info.version).toBe(pkg.version)

      // Everything the API has is in it, with what the HTTP layer adds.
      expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining([
        "/v1/vm-requests", "/v1/vm-requests/{id}", "/v1/vms", "/v1/vms/{id}", "/v1/inventory", "/v1/events", "/metrics", "/healthz"
      ]))
      const create = spec.paths["/v1/vm-requests"]!["post"]!
      expect(create.parameters.map((parameter) => `${parameter.in}:${parameter.name}`)).toContain("header:Idempotency-Key")
      expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(["202", "400", "401", "403", "409", "413", "415", "422", "429"]))
      expect(Object.keys(spec.paths["/v1/deprecations/{os}"]!["put"]!.responses)).toEqual(expect.arrayContaining(["413", "415"]))
      expect(create.responses["429"]!.headers).toHaveProperty("Retry-After")
      expect(Object.keys(spec.paths["/healthz"]!["get"]!.responses)).not.toContain("401")

      // Record real answers, one of each kind at least.
      const recorded: Array<Recorded> = []
      const call = (method: string, path: string, options: RequestOptions = {}) =>
        Effect.tap(request(fleet, method, path, options), (answer) => Effect.sync(() => recorded.push({ method, path, answer })))
      const reader = yield* fleet.createToken({ name: "reader", scopes: ["vms:read"] })

      const accepted = yield* call("POST", "/v1/vm-requests", { body: vmRequestBody({ count: 2, metadata: { team: "payments" } }) })
      expect(accepted.status).toBe(202)
      const requestId = field(accepted, "id") as string
      yield* waitForRequest(fleet.client, RequestId.make(requestId), { timeout: "20 seconds", initialDelay: "20 millis", maxDelay: "200 millis" })
      const vmId = (field(accepted, "vms") as Array<{ id: string }>)[0]!.id
      yield* call("GET", `/v1/vm-requests/${requestId}`)
      yield* call("GET", "/v1/vms?limit=1")
      yield* call("GET", `/v1/vms/${vmId}`)
      yield* call("GET", "/v1/inventory?groupBy=application,state")
      yield* call("GET", "/v1/events?limit=3")
      yield* call("POST", `/v1/vms/${vmId}/decommission`)
      yield* call("POST", `/v1/vms/${vmId}/decommission`) // 409: no longer ready
      yield* call("POST", "/v1/vm-requests", { body: vmRequestBody({ count: 0, stack: "cobol" }) }) // 400 from the service
      const deprecated = yield* call("POST", "/v1/vm-requests", { body: vmRequestBody({ osVersion: "ubuntu-20.04" }) }) // 202 with warnings
      expect(field(deprecated, "warnings")).toHaveLength(1)
      yield* call("POST", "/v1/vm-requests", { body: vmRequestBody({ osVersion: "ubuntu-16.04" }) }) // 400: past its end of life
      yield* call("POST", "/v1/vm-requests", { body: "{ not json" }) // 400 from reading
      yield* call("POST", "/v1/vm-requests", { body: JSON.stringify({ count: "three" }) }) // 400 from the schema
      yield* call("GET", "/v1/vms/not-a-uuid") // 400 path
      yield* call("GET", "/v1/vms?limit=0") // 400 query
      yield* call("GET", "/v1/vms/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b") // 404
      yield* call("GET", "/v1/vm-requests/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b") // 404
      yield* call("GET", "/v1/vms", { token: null }) // 401
      yield* call("POST", "/v1/vm-requests", { token: "nope", body: vmRequestBody() }) // 401
      yield* call("POST", "/v1/vm-requests", { token: reader, body: vmRequestBody() }) // 403
      yield* call("GET", "/metrics", { token: reader }) // 403
      yield* call("POST", "/v1/vm-requests", { body: vmRequestBody({ metadata: { note: "x".repeat(5000) } }) }) // 413
      yield* call("POST", "/v1/vm-requests", { body: vmRequestBody(), headers: { "idempotency-key": "k" } })
      yield* call("POST", "/v1/vm-requests", { body: vmRequestBody(), headers: { "idempotency-key": "k" } }) // replay
      yield* call("POST", "/v1/vm-requests", { body: vmRequestBody({ count: 2 }), headers: { "idempotency-key": "k" } }) // 422
      yield* call("GET", "/healthz", { token: null })
      yield* call("GET", "/readyz", { token: null })
      const metrics = yield* call("GET", "/metrics")
      expect(metrics.headers.get("content-type")).toContain("text/plain")
      // Use up the reader's rate: 429.
      let limited: Answer | undefined
      for (let index = 0; index < 200 && limited === undefined; index++) {
        const answer = yield* call("GET", "/v1/vms?limit=1", { token: reader })
        if (answer.status === 429) limited = answer
      }
      expect(limited).toBeDefined()

      const statuses = new Set(recorded.map(({ answer }) => answer.status))
      for (const status of [200, 202, 400, 401, 403, 404, 409, 413, 422, 429]) expect(statuses, `a ${status} was recorded`).toContain(status)

      // Each answer validates against the schema the document gives for its operation and status.
      const ajv = new Ajv2020({ strict: false, allErrors: true })
      addFormats.default(ajv)
      const checked = new Set<string>()
      for (const { answer, method, path } of recorded) {
        const found = operationOf(spec, method, path)
        expect(found, `${method} ${path} is in the document`).toBeDefined()
        const [template, operation] = found!
        const response = operation.responses[String(answer.status)]
        expect(response, `${method} ${template} declares ${answer.status}`).toBeDefined()
        const contentType = (answer.headers.get("content-type") ?? "").split(";")[0]!
        const media = Object.entries(response!.content ?? {}).find(([declared]) => declared.split(";")[0]!.trim() === contentType)?.[1]
        expect(media, `${method} ${template} ${answer.status} declares ${contentType}`).toBeDefined()
        if (contentType !== "application/json") continue
        const validate = ajv.compile({ ...(media!.schema as object), components: spec.components })
        const valid = validate(answer.json)
        expect(valid ? [] : validate.errors, `${method} ${path} → ${answer.status}: ${answer.text.slice(0, 300)}`).toEqual([])
        checked.add(`${method} ${template} ${answer.status}`)
      }
      expect(checked.size).toBeGreaterThanOrEqual(18)
      // The schemas do reject what does not fit (so the loop above could fail).
      const accepts = ajv.compile({ ...(create.responses["202"]!.content!["application/json"]!.schema as object), components: spec.components })
      expect(accepts({ id: requestId, uri: "/v1/vm-requests/x" })).toBe(false)
      expect(accepts({ ...(accepted.json as object), extra: 1 })).toBe(false)
      expect(accepts(accepted.json)).toBe(true)
      // Warnings are optional, and strings when there.
      expect(field(accepted, "warnings")).toBeUndefined()
      expect(accepts({ ...(accepted.json as object), warnings: [1] })).toBe(false)
    }))

  it.scopedLive("serves Swagger UI at /docs, bundled (no CDN), with the spec inline", () =>
    Effect.gen(function* () {
      const fleet: TestFleet = yield* startFleet({ reconcile: false })
      const docs = yield* request(fleet, "GET", "/docs", { token: null })
      expect(docs.status).toBe(200)
      expect(docs.headers.get("content-type")).toContain("text/html")
      expect(docs.text).toContain("SwaggerUIBundle")
      expect(docs.text).toContain("/v1/vm-requests")
      // Nothing is loaded from elsewhere: no external script or stylesheet.
      expect(docs.text).not.toMatch(/<script[^>]+src=|<link[^>]+href=/)
    }))
})
