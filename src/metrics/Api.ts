import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Authentication } from "../auth/Middleware.js"
import { RequiredScope } from "../auth/Scopes.js"

export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

export class MetricsApi extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("metrics", "/metrics").annotate(RequiredScope, "metrics:read")
      .addSuccess(HttpApiSchema.Text({ contentType: prometheusContentType }))
      .annotate(OpenApi.Description, "Prometheus text format. Needs the `metrics:read` scope (or `admin`).")
  )
  .middleware(Authentication)
{}
