import { type HttpApp, HttpIncomingMessage, HttpMethod, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Config, Effect, Option, Stream } from "effect"
import type { IncomingMessage } from "node:http"

/** `FLEET_MAX_BODY_BYTES`: the largest request body accepted (1 MiB unless set). */
export const BodyLimitConfig = Config.integer("FLEET_MAX_BODY_BYTES").pipe(
  Config.withDefault(1024 * 1024),
  Config.validate({ message: "expected a positive number of bytes", validation: (bytes) => bytes > 0 })
)

const tooLarge = (max: number) =>
  HttpServerResponse.unsafeJson(
    { _tag: "PayloadTooLarge", message: `the request body is larger than ${max} bytes` },
    // The rest of the body is not read: the connection is closed after the answer.
    { status: 413, headers: { connection: "close" } }
  )

const unreadable = HttpServerResponse.unsafeJson(
  { _tag: "HttpApiDecodeError", message: "the request body could not be read", issues: [] },
  { status: 400, headers: { connection: "close" } }
)

/**
 * Reads a body of unknown length (chunked) up to `max` bytes. Past that it stops keeping what
 * comes, without destroying the socket, so that the 413 can still be sent.
 */
const readAtMost = (source: IncomingMessage, max: number) =>
  Effect.async<{ readonly _tag: "Read"; readonly text: string } | { readonly _tag: "TooLarge" } | { readonly _tag: "Failed" }>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    const finish = (result: Parameters<typeof resume>[0]) => {
      if (done) return
      done = true
      resume(result)
    }
    source.on("data", (chunk: Buffer) => {
      if (done) return
      size += chunk.length
      if (size > max) {
        chunks.length = 0
        finish(Effect.succeed({ _tag: "TooLarge" }))
      } else {
        chunks.push(chunk)
      }
    })
    source.once("end", () => finish(Effect.succeed({ _tag: "Read", text: Buffer.concat(chunks).toString("utf8") })))
    source.once("error", () => finish(Effect.succeed({ _tag: "Failed" })))
    source.once("aborted", () => finish(Effect.succeed({ _tag: "Failed" })))
  })

/**
 * The same request, its body served from memory (the socket has been read to its end: reading
 * it again would wait forever): its text, and what `json` reads (parsed once, by `readBody`).
 * `urlParamsBody` goes through `text`.
 */
const withBody = (request: HttpServerRequest.HttpServerRequest, text: string, json: unknown): HttpServerRequest.HttpServerRequest => {
  const bytes = new TextEncoder().encode(text)
  return Object.create(request, {
    text: { get: () => Effect.succeed(text) },
    json: { get: () => Effect.succeed(json) },
    arrayBuffer: { get: () => Effect.succeed(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) },
    stream: { get: () => Stream.succeed(bytes) }
  }) as HttpServerRequest.HttpServerRequest
}

/** No endpoint takes multipart bodies; refusing them here keeps the platform from trying to parse one. */
const multipartRefused = HttpServerResponse.unsafeJson(
  { _tag: "UnsupportedMediaType", message: "multipart bodies are not accepted: send JSON (or YAML where the endpoint says so)" },
  { status: 415 }
)

/** How deep bodies may nest (`[`/`{`): deeper input is refused before any parser or decoder recurses through it. */
export const maxBodyNesting = 64

/** Whether JSON (or YAML flow) text nests brackets deeper than `limit`, outside of quoted strings. */
export const nestsDeeperThan = (text: string, limit: number): boolean => {
  let depth = 0
  let quote: string | undefined
  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (quote !== undefined) {
      if (char === "\\") index++
      else if (char === quote) quote = undefined
    } else if (char === "\"") {
      quote = char
    } else if (char === "[" || char === "{") {
      if (++depth > limit) return true
    } else if (char === "]" || char === "}") {
      depth = Math.max(0, depth - 1)
    }
  }
  return false
}

const tooDeep = HttpServerResponse.unsafeJson(
  {
    _tag: "HttpApiDecodeError",
    message: `the body nests deeper than ${maxBodyNesting} levels`,
    issues: [{ _tag: "Type", path: [], message: `expected at most ${maxBodyNesting} levels of nesting` }]
  },
  { status: 400 }
)

/** No endpoint takes a form: curl's `-d` without a Content-Type sends one, which would be read as one unknown key. */
const formRefused = HttpServerResponse.unsafeJson(
  { _tag: "UnsupportedMediaType", message: "form bodies are not accepted: send JSON with Content-Type: application/json (or YAML where the endpoint says so)" },
  { status: 415 }
)

/**
 * Where JSON.parse stopped, as `body:<line>:<column>: <reason>` (the form the recycle plans'
 * parser gives its problems in): from the position V8 names, or the end of the text when it
 * names none ("Unexpected end of JSON input").
 */
export const jsonSyntaxProblem = (text: string, reason: string): string => {
  const position = /\s+in JSON at position (\d+)(?: \(line \d+ column \d+\))?$/.exec(reason)
  const offset = position === null ? text.length : Math.min(Number(position[1]), text.length)
  const before = text.slice(0, offset).split("\n")
  const what = position === null ? reason : reason.slice(0, position.index)
  return `body:${before.length}:${before[before.length - 1]!.length + 1}: ${what}`
}

const notJson = (problem: string) =>
  HttpServerResponse.unsafeJson(
    { _tag: "HttpApiDecodeError", message: `the body is not valid JSON: ${problem}`, issues: [{ _tag: "Type", path: [], message: problem }] },
    { status: 400 }
  )

/** Whether the API reads this body as JSON: its Content-Type says so, or it has none (the platform's default). */
const readAsJson = (contentType: string) => contentType === "" || contentType.includes("application/json")

/**
 * The checks on a body read in full, then the app with the body served from memory: nesting,
 * and for a JSON body its syntax (the parser's message, with its line and column, instead of a
 * bare 400). An empty JSON body reads as `{}`: an endpoint whose fields are all optional takes it as
 * its defaults, and another names each field it misses.
 */
const readBody = <E, R>(app: HttpApp.Default<E, R>, request: HttpServerRequest.HttpServerRequest, contentType: string, text: string) => {
  if (nestsDeeperThan(text, maxBodyNesting)) return Effect.succeed(tooDeep)
  let json: unknown = undefined
  if (readAsJson(contentType)) {
    try {
      json = text.trim() === "" ? {} : JSON.parse(text)
    } catch (error) {
      return Effect.succeed(notJson(jsonSyntaxProblem(text, error instanceof Error ? error.message : String(error))))
    }
  }
  return Effect.provideService(app, HttpServerRequest.HttpServerRequest, withBody(request, text, json))
}

const isTooLarge = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "cause" in error && error.cause instanceof Error && error.cause.message === "maxBytes exceeded"

/**
 * Refuses bodies over the limit with 413: from `Content-Length` before reading anything, and
 * while reading for bodies sent without one (chunked); bodies nested deeper than
 * `maxBodyNesting`, and JSON bodies that do not parse, with 400; multipart and form bodies with
 * 415. It reads the body of every request that has one, so that what comes after (idempotency,
 * the handlers) reads it from memory.
 */
export const bodyLimit = (maxBytes: number) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (!HttpMethod.hasBody(request.method)) return yield* app
      const contentType = (request.headers["content-type"] ?? "").toLowerCase()
      if (contentType.includes("multipart/")) return multipartRefused
      if (contentType.includes("x-www-form-urlencoded")) return formRefused
      const length = request.headers["content-length"]
      if (length !== undefined) {
        if (!/^\d+$/.test(length)) return unreadable
        if (Number(length) > maxBytes) return tooLarge(maxBytes)
        // Node frames the body by its length: the platform reads it (at most maxBytes) and keeps it for later reads.
        const read = yield* Effect.either(request.text.pipe(HttpIncomingMessage.withMaxBodySize(Option.some(maxBytes))))
        if (read._tag === "Left") return isTooLarge(read.left) ? tooLarge(maxBytes) : unreadable
        return yield* readBody(app, request, contentType, read.right)
      }
      const read = yield* readAtMost(NodeHttpServerRequest.toIncomingMessage(request), maxBytes)
      switch (read._tag) {
        case "TooLarge":
          return tooLarge(maxBytes)
        case "Failed":
          return unreadable
        case "Read":
          return yield* readBody(app, request, contentType, read.text)
      }
    })
