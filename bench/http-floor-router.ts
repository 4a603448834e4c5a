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
import { Effect, Layer, Redacted } from "effect"
import { createHash } from "node:crypto"
import { createServer } from "node:http"
import { layerFromUrl } from "../src/db/Database.js"
import { findToken, insertAuditEvent, insertRequest, isNameTaken, readVm, type RequestInput, requestRows } from "./http-statements.js"

const checked = new Map<string, { email: string; name: string; until: number }>()
const actorOf = (sql: SqlClient.SqlClient, header: string | undefined) =>
  Effect.gen(function* () {
    const match = /^bearer +(\S+)$/i.exec(header ?? "")
    if (!match) return undefined
    const hash = createHash("sha256").update(match[1]!).digest("hex")
    const cached = checked.get(hash)
    if (cached !== undefined && cached.until > Date.now()) return cached
    const rows = yield* sql.unsafe<{ ownerEmail: string; name: string }>(findToken, [hash])
    if (rows[0] === undefined) return undefined
    const actor = { email: rows[0].ownerEmail, name: rows[0].name, until: Date.now() + 5000 }
    checked.set(hash, actor)
    return actor
  })

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/v1/vms/:id", Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const request = yield* HttpServerRequest.HttpServerRequest
    const actor = yield* actorOf(sql, request.headers["authorization"])
    if (actor === undefined) return HttpServerResponse.unsafeJson({ _tag: "Unauthorized" }, { status: 401 })
    const { id } = yield* HttpRouter.params
    const rows = yield* sql.unsafe(readVm, [id!])
    if (rows[0] === undefined) return HttpServerResponse.unsafeJson({ _tag: "NotFound" }, { status: 404 })
    return HttpServerResponse.unsafeJson(rows[0])
  })),
  HttpRouter.post("/v1/vm-requests", Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const request = yield* HttpServerRequest.HttpServerRequest
    const actor = yield* actorOf(sql, request.headers["authorization"])
    if (actor === undefined) return HttpServerResponse.unsafeJson({ _tag: "Unauthorized" }, { status: 401 })
    const input = (yield* request.json) as RequestInput
    // Like fleet: names are drawn again when the unique index refuses one.
    const rows = yield* Effect.suspend(() => {
      const rows = requestRows(input, actor.email)
      return sql.unsafe(insertRequest, rows.parameters).pipe(Effect.as(rows))
    }).pipe(Effect.retry({ times: 3, while: isNameTaken }))
    yield* sql.unsafe(insertAuditEvent, [actor.email, `POST /v1/vm-requests → 202 (token ${actor.name})`])
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
