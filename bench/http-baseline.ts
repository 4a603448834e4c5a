/**
 * The baseline of `npm run bench:http`: the two endpoints it measures written with nothing but
 * `node:http` and `pg`, doing the same SQL as fleet does for them (the token lookup, cached for
 * 5 seconds as fleet does; the same reads; the same transaction and inserts), with the same pool size. What fleet adds on top —
 * Effect, schemas, routing, middleware, logging — is the difference between the two.
 *
 * Run by bench/http.ts as a child process: DATABASE_URL, PORT, DATABASE_POOL_SIZE.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import pg from "pg"

const pool = new pg.Pool({ connectionString: process.env["DATABASE_URL"], max: Number(process.env["DATABASE_POOL_SIZE"] ?? 10) })

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

/** Like fleet: a token found active is trusted for 5 seconds (FLEET_TOKEN_CACHE_TTL's default). */
const checked = new Map<string, { actor: { owner_email: string; name: string }; until: number }>()

const authenticate = async (request: IncomingMessage) => {
  const match = /^bearer +(\S+)$/i.exec(request.headers.authorization ?? "")
  if (!match) return undefined
  const hash = createHash("sha256").update(match[1]!).digest("hex")
  const cached = checked.get(hash)
  if (cached !== undefined && cached.until > Date.now()) return cached.actor
  const { rows } = await pool.query(
    "select id, name, owner_email, scopes, applications from api_tokens where token_hash = $1 and revoked_at is null",
    [hash]
  )
  const actor = rows[0] as { owner_email: string; name: string } | undefined
  if (actor !== undefined) checked.set(hash, { actor, until: Date.now() + 5000 })
  return actor
}

const uuid = /^\/v1\/vms\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

const getVm = async (response: ServerResponse, id: string) => {
  const { rows } = await pool.query("select * from vms where id = $1", [id])
  const vm = rows[0]
  if (vm === undefined) return send(response, 404, { _tag: "NotFound", message: `VM ${id} does not exist` })
  const events = await pool.query("select vm_id, at, from_state, to_state, reason, actor from events where vm_id = $1 order by id", [id])
  const executions = await pool.query("select * from executions where vm_id = $1 order by created_at, id", [id])
  send(response, 200, {
    id: vm.id, uri: `/v1/vms/${vm.id}`, name: vm.name, requestId: vm.request_id, application: vm.application,
    environment: vm.environment, stack: vm.stack, osVersion: vm.os_version, machineType: vm.machine_type,
    metadata: vm.metadata, state: vm.state, reason: vm.reason, attempt: vm.attempt, createdBy: vm.created_by,
    createdAt: vm.created_at, updatedAt: vm.updated_at, readyAt: vm.ready_at, decommissionedAt: vm.decommissioned_at,
    history: events.rows.map((event) => ({ at: event.at, from: event.from_state, to: event.to_state, reason: event.reason, actor: event.actor })),
    executions: executions.rows.map((execution) => ({
      id: execution.id, kind: execution.kind, proc: execution.proc, state: execution.state, proctorId: execution.proctor_id,
      proctorStatus: execution.proctor_status, submissions: execution.submissions, polls: execution.polls, reason: execution.reason,
      createdAt: execution.created_at, submittedAt: execution.submitted_at, finishedAt: execution.finished_at, deadlineAt: execution.deadline_at
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
  const count = input["count"]
  const names = Array.from({ length: count }, () =>
    `${String(input["application"])}-stg-${String(input["stack"])}-u2204-${randomBytes(6).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "0").slice(0, 6)}`)
  await pool.query("select name from vms where name = any($1)", [names])
  const requestId = randomUUID()
  const vms = names.map((name) => ({ id: randomUUID(), name }))
  const client = await pool.connect()
  try {
    await client.query("begin")
    await client.query(
      `insert into vm_requests (id, application, environment, stack, os_version, machine_type, count, metadata, requested_by)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [requestId, input["application"], input["environment"], input["stack"], input["osVersion"], input["machineType"], count, "{}", actor.owner_email]
    )
    for (const vm of vms) {
      await client.query(
        `insert into vms (id, request_id, name, application, environment, stack, os_version, machine_type, metadata, state, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)`,
        [vm.id, requestId, vm.name, input["application"], input["environment"], input["stack"], input["osVersion"], input["machineType"], "{}", actor.owner_email]
      )
      await client.query(
        `insert into executions (id, vm_id, kind, proc, args, email_id, state) values ($1, $2, 'create', 'create-vm-java', $3, $4, 'pending')`,
        [randomUUID(), vm.id, JSON.stringify({ VM_NAME: vm.name }), actor.owner_email]
      )
    }
    await client.query(
      `insert into events (actor, kind, application, request_id, vm_id, run_id, from_state, to_state, reason)
       values ($1, 'request.accepted', $2, $3, null, null, null, null, $4)`,
      [actor.owner_email, input["application"], requestId, `${count} VM(s) requested`]
    )
    for (const vm of vms) {
      await client.query(
        `insert into events (actor, kind, application, request_id, vm_id, run_id, from_state, to_state, reason)
         values ($1, 'vm.state', $2, $3, $4, null, null, 'pending', $5)`,
        [actor.owner_email, input["application"], requestId, vm.id, `accepted as ${vm.name}`]
      )
    }
    await client.query("commit")
  } catch (error) {
    await client.query("rollback")
    throw error
  } finally {
    client.release()
  }
  await pool.query("insert into events (actor, kind, application, reason) values ($1, 'http.request', null, $2)", [
    actor.owner_email,
    `POST /v1/vm-requests → 202 (token ${actor.name})`
  ])
  send(response, 202, {
    id: requestId,
    uri: `/v1/vm-requests/${requestId}`,
    vms: vms.map((vm) => ({ id: vm.id, name: vm.name, uri: `/v1/vms/${vm.id}` }))
  })
}

const server = createServer((request, response) => {
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
    }
  })()
})

server.listen(Number(process.env["PORT"] ?? 8090), "127.0.0.1", () => {
  console.log(`Listening on http://127.0.0.1:${(server.address() as { port: number }).port}`)
})
process.on("SIGTERM", () => {
  server.close()
  void pool.end()
})
