/**
 * The floor of fleet's stack for `npm run bench:http`: the same two endpoints on Effect's `HttpApi`
 * (`@effect/platform` with `@effect/platform-node`), fleet's schemas and its database layer
 * (`@effect/sql-pg`, statements prepared as fleet's are), doing the baseline's work and nothing
 * more: a bearer token looked up (cached for 5 seconds, as fleet and the baseline do), fleet's one
 * statement that reads a VM, fleet's one statement that writes a request, and the audit event of a
 * POST. No logging, metrics, scopes, rate limit, idempotency, body limit or reconciler: what fleet's
 * own features cost is the difference between fleet and this; what the stack costs, between this
 * and the baseline.
 *
 * Run by bench/http.ts as a child process (BENCH_FLOOR=1): DATABASE_URL, PORT, DATABASE_POOL_SIZE.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiMiddleware, HttpApiSecurity, HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import { layerFromUrl } from "../src/db/Database.js"
import { CreateVmRequest, ExecutionView, RequestId, requestUri, VmDetail, VmEvent, VmId, VmRequestAccepted, VmSummary, vmUri } from "../src/vms/Domain.js"
import { VmDetailRow } from "../src/vms/Repo.js"
import { actorOfToken, type FloorActor, writeRequest } from "./http-floor-support.js"
import { readVm } from "./http-statements.js"

class Actor extends Context.Tag("floor/Actor")<Actor, FloorActor>() {}

class Bearer extends HttpApiMiddleware.Tag<Bearer>()("floor/Bearer", {
  provides: Actor,
  failure: HttpApiError.Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

class FloorApi extends HttpApi.make("floor").add(
  HttpApiGroup.make("vms")
    .add(HttpApiEndpoint.post("createRequest", "/v1/vm-requests").setPayload(CreateVmRequest).addSuccess(VmRequestAccepted, { status: 202 }))
    .add(HttpApiEndpoint.get("getVm", "/v1/vms/:id").setPath(Schema.Struct({ id: VmId })).addSuccess(VmDetail).addError(HttpApiError.NotFound))
    .middleware(Bearer)
) {}

const BearerLive = Layer.effect(
  Bearer,
  Effect.map(SqlClient.SqlClient, (sql) => ({
    bearer: (token) =>
      actorOfToken(Redacted.value(token)).pipe(
        Effect.flatMap(Option.match({ onNone: () => Effect.fail(new HttpApiError.Unauthorized()), onSome: Effect.succeed })),
        Effect.provideService(SqlClient.SqlClient, sql)
      )
  }))
)

const trusted = { disableValidation: true } as const
const decodeDetail = Schema.decodeUnknown(VmDetailRow)

const VmsLive = HttpApiBuilder.group(FloorApi, "vms", (handlers) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return handlers
      .handle("getVm", ({ path }) =>
        Effect.gen(function* () {
          const rows = yield* sql.unsafe(readVm, [path.id]).pipe(Effect.orDie)
          const found = Option.fromNullable(rows[0])
          if (Option.isNone(found)) return yield* Effect.fail(new HttpApiError.NotFound())
          const { executions, history, ...vm } = yield* Effect.orDie(decodeDetail(found.value))
          return new VmDetail({
            ...vm,
            uri: vmUri(vm.id),
            history: history.map((event) =>
              new VmEvent({ at: event.at, from: event.fromState, to: event.toState, reason: event.reason, actor: event.actor }, trusted)),
            executions: executions.map((execution) => new ExecutionView(execution, trusted))
          }, trusted)
        }))
      .handle("createRequest", ({ payload }) =>
        Effect.gen(function* () {
          const { requestId, vms } = yield* writeRequest(payload, yield* Actor)
          return new VmRequestAccepted({
            id: RequestId.make(requestId),
            uri: requestUri(RequestId.make(requestId)),
            vms: vms.map((vm) => new VmSummary({ id: VmId.make(vm.id), name: vm.name, uri: vmUri(VmId.make(vm.id)) }, trusted))
          }, trusted)
        }))
  }))

const port = Number(process.env["PORT"] ?? 8091)
const ServerLive = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(FloorApi).pipe(Layer.provide(VmsLive), Layer.provide(BearerLive))),
  Layer.provide(layerFromUrl(Redacted.make(process.env["DATABASE_URL"] ?? ""), Number(process.env["DATABASE_POOL_SIZE"] ?? 10))),
  HttpServer.withLogAddress,
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

NodeRuntime.runMain(Layer.launch(ServerLive))
