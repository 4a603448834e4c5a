import type { OpenApi } from "@effect/platform"

const problem = (tag: string, description: string): OpenApi.OpenApiSpecResponse => ({
  description,
  content: {
    "application/json": {
      schema: {
        type: "object",
        required: ["_tag", "message"],
        properties: { _tag: { type: "string", enum: [tag] }, message: { type: "string" } },
        additionalProperties: false
      }
    }
  }
} as unknown as OpenApi.OpenApiSpecResponse)

/**
 * What the HTTP layer does around every endpoint, added to the generated document: the
 * `Idempotency-Key` header and its answers on every POST, the body limit on every request that
 * may have a body, the 415 of every endpoint that takes one, `Retry-After` on every 429. (Endpoints declare the rest themselves.)
 */
export const documentHttpLayer = (document: Record<string, unknown>): Record<string, unknown> => {
  const spec = document as unknown as OpenApi.OpenAPISpec
  for (const operations of Object.values(spec.paths)) {
    for (const [method, operation] of Object.entries(operations) as Array<[string, OpenApi.OpenAPISpecOperation]>) {
      if (method === "post") {
        operation.parameters.push({
          name: "Idempotency-Key",
          in: "header",
          required: false,
          description:
            "Makes the POST safe to retry: the same key with the same request returns the first answer (2xx answers are kept " +
            "for FLEET_IDEMPOTENCY_TTL, 24 hours by default) and creates nothing new; with a different request, 422. Keys are per token.",
          schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7e]+$" }
        } as OpenApi.OpenAPISpecParameter)
        operation.responses[409] ??= problem("IdempotencyKeyInProgress", "A request with this Idempotency-Key is in progress")
        operation.responses[422] ??= problem("IdempotencyKeyReused", "This Idempotency-Key was used with a different request")
      }
      if (method === "post" || method === "put" || method === "patch") {
        operation.responses[413] ??= problem("PayloadTooLarge", "The body is larger than FLEET_MAX_BODY_BYTES")
      }
      if ((operation as { requestBody?: unknown }).requestBody !== undefined) {
        operation.responses[415] ??= problem("UnsupportedMediaType", "The body is not in a content type the endpoint reads (a form, multipart, or JSON sent as text/plain)")
      }
      const limited = operation.responses[429]
      if (limited !== undefined) {
        ;(limited as { headers?: unknown }).headers = {
          "Retry-After": { description: "Seconds until the token may call again", schema: { type: "integer", minimum: 1 } }
        }
      }
    }
  }
  return document
}
