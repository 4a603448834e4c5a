/**
 * The baseline of `npm run bench:http`: the two endpoints it measures written with nothing but
 * `node:http` and `pg`, doing the same SQL as fleet does for them, with the same pool size: the token
 * lookup, cached for 5 seconds as fleet does; fleet's one statement that reads a VM with its history
 * and executions; fleet's one statement that writes a request, its VMs, executions and events; the
 * audit event of a POST (fleet groups those of concurrent requests into one insert; here each has
 * its own). Statements are prepared (named), as fleet's are. What fleet adds on top — Effect,
 * schemas, routing, middleware, logging — is the difference between the two.
 *
 * Run by bench/http.ts as a child process: DATABASE_URL, PORT, DATABASE_POOL_SIZE.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import pg from "pg"
import {
  auditReason,
  findToken,
  insertAuditEvent,
  insertRequest,
  isNameTaken,
  readVm,
  type RequestInput,
  requestRows,
  tokenHash,
  TrustedTokens
} from "./http-statements.js"

const pool = new pg.Pool({ connectionString: process.env["DATABASE_URL"], max: Number(process.env["DATABASE_POOL_SIZE"] ?? 10) })

/** A named (prepared) statement: parsed and planned once per connection, as fleet's statements are. */
const query = (name: string, text: string, values: Array<unknown>) => pool.query({ name, text, values })

const send = (response: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  response.end(text)
}

const readBody = (request: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const trusted = new TrustedTokens<{ owner_email: string; name: string }>()

const authenticate = async (request: IncomingMessage) => {
  const match = /^bearer +(\S+)$/i.exec(request.headers.authorization ?? "")
  if (!match) return undefined
  const hash = tokenHash(match[1]!)
  const cached = trusted.find(hash)
  if (cached !== undefined) return cached
  const { rows } = await query("token", findToken, [hash])
  const actor = rows[0] as { owner_email: string; name: string } | undefined
  return actor === undefined ? undefined : trusted.remember(hash, actor)
}

const uuid = /^\/v1\/vms\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/** The row and its history and executions in one statement, as fleet reads them. */
const getVm = async (response: ServerResponse, id: string) => {
  const { rows } = await query("vm", readVm, [id])
  const vm = rows[0]
  if (vm === undefined) return send(response, 404, { _tag: "NotFound", message: `VM ${id} does not exist` })
  send(response, 200, {
    id: vm.id, uri: `/v1/vms/${vm.id}`, name: vm.name, requestId: vm.request_id, application: vm.application,
    environment: vm.environment, stack: vm.stack, osVersion: vm.os_version, machineType: vm.machine_type,
    metadata: vm.metadata, state: vm.state, reason: vm.reason, attempt: vm.attempt, createdBy: vm.created_by,
    createdAt: vm.created_at, updatedAt: vm.updated_at, readyAt: vm.ready_at, decommissionedAt: vm.decommissioned_at,
    history: vm.history.map((event: Record<string, unknown>) => ({ at: event["at"], from: event["fromState"], to: event["toState"], reason: event["reason"], actor: event["actor"] })),
    executions: vm.executions.map((execution: Record<string, unknown>) => ({
      id: execution["id"], kind: execution["kind"], proc: execution["proc"], state: execution["state"], proctorId: execution["proctorId"],
      proctorStatus: execution["proctorStatus"], submissions: execution["submissions"], polls: execution["polls"], reason: execution["reason"],
      createdAt: execution["createdAt"], submittedAt: execution["submittedAt"], finishedAt: execution["finishedAt"], deadlineAt: execution["deadlineAt"]
    }))
  })
}

const fields = ["application", "environment", "stack", "osVersion", "machineType"] as const

const createRequest = async (response: ServerResponse, body: string, actor: { owner_email: string; name: string }) => {
  let input: Record<string, unknown>
  try {
    input = JSON.parse(body) as Record<string, unknown>
  } catch {
    return send(response, 400, { _tag: "InvalidInput", message: "not JSON" })
  }
  if (fields.some((field) => typeof input[field] !== "string") || typeof input["count"] !== "number" || input["count"] < 1) {
    return send(response, 400, { _tag: "InvalidInput", message: "invalid request" })
  }
  // Like fleet: names are drawn without looking them up first, and drawn again when the unique index refuses one.
  for (let attempt = 0; ; attempt++) {
    const { parameters, requestId, vms } = requestRows(input as unknown as RequestInput, actor.owner_email)
    try {
      await query("request", insertRequest, parameters)
    } catch (error) {
      if (isNameTaken(error) && attempt < 3) continue
      throw error
    }
    await query("audit", insertAuditEvent, [actor.owner_email, auditReason(actor.name)])
    return send(response, 202, {
      id: requestId,
      uri: `/v1/vm-requests/${requestId}`,
      vms: vms.map((vm) => ({ id: vm.id, name: vm.name, uri: `/v1/vms/${vm.id}` }))
    })
  }
}

// Requests being handled: the pool ends only once none is (a client may hang up on one, closing
// its connection while the handler still has queries to make).
let handling = 0
let stopping = false
const endPoolWhenIdle = () => {
  if (!stopping || handling > 0) return
  stopping = false
  void pool.end()
}

const server = createServer((request, response) => {
  handling++
  void (async () => {
    try {
      const body = request.method === "POST" ? await readBody(request) : ""
      const actor = await authenticate(request)
      if (actor === undefined) return send(response, 401, { _tag: "Unauthorized", message: "a valid API token is required" })
      const url = request.url ?? "/"
      const vm = uuid.exec(url)
      if (request.method === "GET" && vm) return await getVm(response, vm[1]!)
      if (request.method === "POST" && url === "/v1/vm-requests") return await createRequest(response, body, actor)
      send(response, 404, { _tag: "NotFound", message: "no such endpoint" })
    } catch (error) {
      console.error(error)
      send(response, 500, { _tag: "InternalError", message: "internal error" })
    } finally {
      handling--
      endPoolWhenIdle()
    }
  })()
})

server.listen(Number(process.env["PORT"] ?? 8090), "127.0.0.1", () => {
  console.log(`Listening on http://127.0.0.1:${(server.address() as { port: number }).port}`)
})
process.once("SIGTERM", () => {
  server.close()
  server.closeIdleConnections()
  stopping = true
  endPoolWhenIdle()
})
