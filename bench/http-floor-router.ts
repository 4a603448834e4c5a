/**
 * The lower floor for `npm run bench:http` (BENCH_FLOOR=1): the same two endpoints on Effect's
 * `HttpRouter` (`@effect/platform` without `HttpApi`) and fleet's database layer, with no schema at
 * all: the cached bearer check, the same statements (bench/http-statements.ts), and the rows sent
 * back as JSON as they come. What Effect's HTTP server and SQL client cost by themselves.
 *
 * Run by bench/http.ts as a child process: DATABASE_URL, PORT, DATABASE_POOL_SIZE.
 */
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option, Redacted } from "effect"
import { createServer } from "node:http"
import { layerFromUrl } from "../src/db/Database.js"
import { actorOfToken, writeRequest } from "./http-floor-support.js"
import { readVm, type RequestInput } from "./http-statements.js"

/** The actor of the request's bearer token, none without an active one. */
const requestActor = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
  const match = /^bearer +(\S+)$/i.exec(request.headers["authorization"] ?? "")
  return match === null ? Effect.succeedNone : actorOfToken(match[1]!)
})

const unauthorized = HttpServerResponse.unsafeJson({ _tag: "Unauthorized" }, { status: 401 })

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/v1/vms/:id", Effect.gen(function* () {
    if (Option.isNone(yield* requestActor)) return unauthorized
    const sql = yield* SqlClient.SqlClient
    const { id } = yield* HttpRouter.params
    const rows = yield* sql.unsafe(readVm, [id!])
    if (rows[0] === undefined) return HttpServerResponse.unsafeJson({ _tag: "NotFound" }, { status: 404 })
    return HttpServerResponse.unsafeJson(rows[0])
  })),
  HttpRouter.post("/v1/vm-requests", Effect.gen(function* () {
    const actor = yield* requestActor
    if (Option.isNone(actor)) return unauthorized
    const input = (yield* Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.json)) as RequestInput
    const rows = yield* writeRequest(input, actor.value)
    return HttpServerResponse.unsafeJson({ id: rows.requestId, uri: `/v1/vm-requests/${rows.requestId}`, vms: rows.vms }, { status: 202 })
  })),
  Effect.orDie
)

const port = Number(process.env["PORT"] ?? 8092)
NodeRuntime.runMain(Layer.launch(HttpServer.serve(router).pipe(
  HttpServer.withLogAddress,
  Layer.provide(layerFromUrl(Redacted.make(process.env["DATABASE_URL"] ?? ""), Number(process.env["DATABASE_POOL_SIZE"] ?? 10))),
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)))
