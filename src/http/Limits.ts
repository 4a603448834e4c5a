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
 * it again would wait forever). What an endpoint with a payload reads of it is parsed when it
 * reads it, after the route and the token were checked: `json` (a body that does not parse, or a
 * form, which no endpoint takes, is answered as the failure says, see `bodyAsJson`); endpoints
 * that read their body themselves (a recycle plan's text) and endpoints without one are left alone.
 */
const withBody = (request: HttpServerRequest.HttpServerRequest, text: string): HttpServerRequest.HttpServerRequest => {
  const bytes = new TextEncoder().encode(text)
  let parsed: Effect.Effect<unknown, HttpServerResponse.HttpServerResponse> | undefined
  return Object.create(request, {
    text: { get: () => Effect.succeed(text) },
    json: { get: () => (parsed ??= bodyAsJson(text)) },
    // The platform reads a form's fields through this: refused, with the reason.
    urlParamsBody: { get: () => Effect.fail(formRefused) },
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
 * Why JSON.parse refused a body, as `body:<line>:<column>: <reason>` (the form the recycle plans'
 * parser gives its problems in): at the position V8 names, or at the end of the text for
 * "Unexpected end of JSON input"; as `body: <reason>` when it names no position (Node 20's
 * "Unexpected token" does not).
 */
const jsonSyntaxProblem = (text: string, reason: string): string => {
  // The reason's first line: V8 may quote the text after it, over several lines.
  const said = reason.split("\n")[0]!
  const position = /(?: in JSON)? at position (\d+)(?: \(line \d+ column \d+\))?$/.exec(said)
  if (said.startsWith("Unexpected end of JSON input")) return `body:${lineAndColumn(text, text.length)}: ${said}`
  return position === null ? `body: ${said}` : `body:${lineAndColumn(text, Number(position[1]))}: ${said.slice(0, position.index)}`
}

/** `<line>:<column>` of an offset in the text, both from 1. */
const lineAndColumn = (text: string, offset: number): string => {
  const before = text.slice(0, Math.min(offset, text.length)).split("\n")
  return `${before.length}:${before[before.length - 1]!.length + 1}`
}

const notJson = (problem: string) =>
  HttpServerResponse.unsafeJson(
    { _tag: "HttpApiDecodeError", message: `the body is not valid JSON: ${problem}`, issues: [{ _tag: "Type", path: [], message: problem }] },
    { status: 400 }
  )

/**
 * A JSON body as the API reads it: an empty one as `{}` (an endpoint whose fields are all
 * optional takes it as its defaults, another names each field it misses); one that does not parse
 * fails with the 400 to answer, the parser's reason with its line and column. (The platform lets
 * a failure here die; a response that dies is the answer sent.)
 */
const bodyAsJson = (text: string): Effect.Effect<unknown, HttpServerResponse.HttpServerResponse> => {
  if (text.trim() === "") return Effect.succeed({})
  try {
    return Effect.succeed(JSON.parse(text))
  } catch (error) {
    return Effect.fail(notJson(jsonSyntaxProblem(text, error instanceof Error ? error.message : String(error))))
  }
}

const isTooLarge = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "cause" in error && error.cause instanceof Error && error.cause.message === "maxBytes exceeded"

/**
 * Refuses bodies over the limit with 413: from `Content-Length` before reading anything, and
 * while reading for bodies sent without one (chunked); bodies nested deeper than
 * `maxBodyNesting` with 400; multipart bodies with 415. It reads the body of every request that
 * has one, so that what comes after (idempotency, the handlers) reads it from memory, parsed when
 * an endpoint reads it (see `withBody`).
 */
export const bodyLimit = (maxBytes: number) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (!HttpMethod.hasBody(request.method)) return yield* app
      if ((request.headers["content-type"] ?? "").toLowerCase().includes("multipart/")) return multipartRefused
      const length = request.headers["content-length"]
      if (length !== undefined) {
        if (!/^\d+$/.test(length)) return unreadable
        if (Number(length) > maxBytes) return tooLarge(maxBytes)
        // Node frames the body by its length: the platform reads it (at most maxBytes) and keeps it for later reads.
        const read = yield* Effect.either(request.text.pipe(HttpIncomingMessage.withMaxBodySize(Option.some(maxBytes))))
        if (read._tag === "Left") return isTooLarge(read.left) ? tooLarge(maxBytes) : unreadable
        if (nestsDeeperThan(read.right, maxBodyNesting)) return tooDeep
        return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, withBody(request, read.right))
      }
      const read = yield* readAtMost(NodeHttpServerRequest.toIncomingMessage(request), maxBytes)
      switch (read._tag) {
        case "TooLarge":
          return tooLarge(maxBytes)
        case "Failed":
          return unreadable
        case "Read":
          if (nestsDeeperThan(read.text, maxBodyNesting)) return tooDeep
          return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, withBody(request, read.text))
      }
    })
