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
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import pg from "pg"

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

/** Like fleet: a token found active is trusted for 5 seconds (FLEET_TOKEN_CACHE_TTL's default). */
const checked = new Map<string, { actor: { owner_email: string; name: string }; until: number }>()

const authenticate = async (request: IncomingMessage) => {
  const match = /^bearer +(\S+)$/i.exec(request.headers.authorization ?? "")
  if (!match) return undefined
  const hash = createHash("sha256").update(match[1]!).digest("hex")
  const cached = checked.get(hash)
  if (cached !== undefined && cached.until > Date.now()) return cached.actor
  const { rows } = await query(
    "token",
    "select id, name, owner_email, scopes, applications from api_tokens where token_hash = $1 and revoked_at is null",
    [hash]
  )
  const actor = rows[0] as { owner_email: string; name: string } | undefined
  if (actor !== undefined) checked.set(hash, { actor, until: Date.now() + 5000 })
  return actor
}

const uuid = /^\/v1\/vms\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/** The row and its history and executions in one statement, as fleet's `findVmDetail` reads them. */
const getVm = async (response: ServerResponse, id: string) => {
  const { rows } = await query(
    "vm",
    `select v.*,
       coalesce((
         select json_agg(json_build_object(
           'vmId', e.vm_id, 'at', e.at, 'fromState', e.from_state, 'toState', e.to_state, 'reason', e.reason, 'actor', e.actor
         ) order by e.id) from events e where e.vm_id = v.id
       ), '[]') as history,
       coalesce((
         select json_agg(json_build_object(
           'id', x.id, 'vmId', x.vm_id, 'kind', x.kind, 'proc', x.proc, 'args', x.args, 'emailId', x.email_id, 'state', x.state,
           'proctorId', x.proctor_id, 'proctorStatus', x.proctor_status, 'submissions', x.submissions, 'polls', x.polls,
           'dueAt', x.due_at, 'deadlineAt', x.deadline_at, 'reason', x.reason, 'createdAt', x.created_at,
           'submittedAt', x.submitted_at, 'finishedAt', x.finished_at
         ) order by x.created_at, x.id) from executions x where x.vm_id = v.id
       ), '[]') as executions
     from vms v where v.id = $1`,
    [id]
  )
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

const suffixAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
const suffix = () => Array.from(randomBytes(6), (byte) => suffixAlphabet[byte % 32]).join("")

const insertRequest = async (input: Record<string, unknown>, count: number, actor: { owner_email: string; name: string }) => {
  const names = Array.from({ length: count }, () => `${String(input["application"])}-stg-${String(input["stack"])}-u2204-${suffix()}`)
  const requestId = randomUUID()
  const vms = names.map((name) => ({ id: randomUUID(), name }))
  const request = {
    id: requestId, application: input["application"], environment: input["environment"], stack: input["stack"], os_version: input["osVersion"],
    machine_type: input["machineType"], count, metadata: {}, requested_by: actor.owner_email
  }
  const vmRows = vms.map((vm) => ({
    id: vm.id, request_id: requestId, name: vm.name, application: input["application"], environment: input["environment"], stack: input["stack"],
    os_version: input["osVersion"], machine_type: input["machineType"], metadata: {}, created_by: actor.owner_email, state: "pending"
  }))
  const executions = vms.map((vm) => ({
    id: randomUUID(), vm_id: vm.id, kind: "create", proc: "create-vm-java", args: { VM_NAME: vm.name, APPLICATION: input["application"], ENVIRONMENT: input["environment"], STACK: input["stack"], OS_VERSION: input["osVersion"], MACHINE_TYPE: input["machineType"] }, email_id: actor.owner_email, claimed_by: null
  }))
  const events = [
    { actor: actor.owner_email, kind: "request.accepted", application: input["application"], request_id: requestId, vm_id: null, execution_id: null, from_state: null, to_state: null, reason: `${count} VM(s) requested` },
    ...vms.map((vm) => ({
      actor: actor.owner_email, kind: "vm.state", application: input["application"], request_id: requestId, vm_id: vm.id, execution_id: null,
      from_state: null, to_state: "pending", reason: `accepted as ${vm.name}`
    }))
  ]
  // fleet's insert of a request (VmRepo's insertRequests), its executions written pending.
  await query(
    "request",
    `with requests as (
       insert into vm_requests (id, application, environment, stack, os_version, machine_type, count, metadata, requested_by)
       select * from jsonb_to_recordset($1::jsonb) as t(
         id uuid, application text, environment text, stack text, os_version text, machine_type text, count int, metadata jsonb, requested_by text)
       returning id
     ), new_vms as (
       insert into vms (id, request_id, name, application, environment, stack, os_version, machine_type, metadata, created_by, state)
       select * from jsonb_to_recordset($2::jsonb) as t(
         id uuid, request_id uuid, name text, application text, environment text, stack text, os_version text, machine_type text, metadata jsonb,
         created_by text, state text)
       returning id
     ), new_executions as (
       insert into executions (id, vm_id, kind, proc, args, email_id, state, claimed_by, submissions, due_at)
       select id, vm_id, kind, proc, args, email_id, 'pending', claimed_by, 0, now()
       from jsonb_to_recordset($3::jsonb) as t(id uuid, vm_id uuid, kind text, proc text, args jsonb, email_id text, claimed_by uuid)
       returning id
     )
     insert into events (actor, kind, application, request_id, vm_id, execution_id, from_state, to_state, reason, run_id)
     select *, null::uuid from jsonb_to_recordset($4::jsonb) as t(
       actor text, kind text, application text, request_id uuid, vm_id uuid, execution_id uuid, from_state text, to_state text, reason text)`,
    [JSON.stringify([request]), JSON.stringify(vmRows), JSON.stringify(executions), JSON.stringify(events)]
  )
  return { requestId, vms }
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
  // Like fleet: names are drawn without looking them up first, and drawn again when the unique index refuses one.
  let written: { requestId: string; vms: Array<{ id: string; name: string }> } | undefined
  for (let attempt = 0; written === undefined; attempt++) {
    try {
      written = await insertRequest(input, count, actor)
    } catch (error) {
      if ((error as { code?: unknown }).code !== "23505" || attempt >= 3) throw error
    }
  }
  const { requestId, vms } = written
  await query("audit", "insert into events (actor, kind, application, reason) values ($1, 'http.request', null, $2)", [
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
