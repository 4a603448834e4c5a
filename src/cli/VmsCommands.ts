import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { waitUntil } from "../client/Client.js"
import { CreateVmRequest, RequestId, type Vm, type VmDetail, type VmRequest, type VmRequestAccepted, VmId, VmState } from "../vms/Domain.js"
import { terminalVmStates } from "../vms/StateMachine.js"
import { type Client, connect, connectionOptions, decodeId, explainFailure, jsonOption, limitOption } from "./Connection.js"
import { exitWithFailureStatus, printJson, table } from "./Output.js"
import { commandGroup } from "./Help.js"

const vmRows = (vms: ReadonlyArray<Vm>) =>
  table(
    ["ID", "NAME", "STATE", "APPLICATION", "ENV", "STACK", "OS", "REASON"],
    vms.map((vm) => [vm.id, vm.name, vm.state, vm.application, vm.environment, vm.stack, vm.osVersion, vm.reason ?? ""])
  )

const stateAndReason = (vm: Vm): string => (vm.reason === null ? vm.state : `${vm.state} (${vm.reason})`)

/**
 * Polls until `done`, with a line on stderr each time one of the VMs `vmsOf` finds in what it
 * polled changes state from the one it was known in: a wait of minutes otherwise shows nothing at all.
 */
const waitShowingChanges = <A, E>(
  poll: Effect.Effect<A, E>,
  vmsOf: (polled: A) => ReadonlyArray<Vm>,
  known: ReadonlyArray<readonly [string, VmState]>,
  done: (polled: A) => boolean,
  what: string
) => {
  const lastStates = new Map<string, VmState>(known)
  const showingChanges = poll.pipe(
    Effect.tap((polled) =>
      Effect.forEach(vmsOf(polled), (vm) => {
        if (lastStates.get(vm.id) === vm.state) return Effect.void
        lastStates.set(vm.id, vm.state)
        return Console.error(`  ${vm.name}: ${stateAndReason(vm)}`)
      }, { discard: true })
    )
  )
  return waitUntil(showingChanges, done, what)
}

/** A request's VMs until every one is settled. Every VM of a new request starts pending (see VmState): only its moves from there are news. */
const waitShowingProgress = (client: Client, accepted: VmRequestAccepted) =>
  waitShowingChanges(
    client.vms.getRequest({ path: { id: accepted.id } }),
    (request) => request.vms,
    accepted.vms.map((vm) => [vm.id, "pending"] as const),
    (request: VmRequest) => request.state !== "in_progress",
    `VM request ${accepted.id}`
  )

/** Why a settled request is not `ready`: each VM that did not become ready, with its reason. */
const notReadyReport = (request: VmRequest): string => {
  const notReady = request.vms.filter((vm) => vm.state !== "ready")
  return [
    `error: request ${request.id} ended ${request.state}: ${notReady.length} of ${request.vms.length} VMs not ready`,
    ...notReady.map((vm) => `  - ${vm.name} (${vm.id}): ${stateAndReason(vm)}`)
  ].join("\n")
}

const create = Command.make(
  "create",
  {
    ...connectionOptions,
    json: jsonOption,
    application: Options.text("application").pipe(Options.withAlias("a"), Options.withDescription("application name, e.g. payments-api")),
    environment: Options.text("environment").pipe(Options.withAlias("e"), Options.withDescription("environment, e.g. production")),
    stack: Options.text("stack").pipe(Options.withAlias("s"), Options.withDescription("language stack, e.g. java")),
    osVersion: Options.text("os").pipe(Options.withDescription("OS version, e.g. ubuntu-24.04")),
    machineType: Options.text("machine-type").pipe(Options.withAlias("m"), Options.withDescription("machine type, e.g. n2-standard-4")),
    count: Options.integer("count").pipe(Options.withAlias("n"), Options.withDefault(1), Options.withDescription("how many VMs")),
    metadata: Options.text("metadata").pipe(
      Options.repeated,
      Options.mapEffect((entries) =>
        Effect.forEach(entries, (entry) => {
          const equals = entry.indexOf("=")
          return equals > 0
            ? Effect.succeed([entry.slice(0, equals), entry.slice(equals + 1)] as const)
            : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--metadata ${entry}: expected key=value, such as team=payments`)))
        })
      ),
      Options.withDescription("a key=value pair of the VMs' metadata (--metadata team=payments --metadata tier=web)")
    ),
    wait: Options.boolean("wait").pipe(
      Options.withDescription(
        "wait until every VM is ready, failed or timed out, showing each change of state on stderr; " +
          "exit status 1 unless every VM became ready"
      )
    )
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const payload = new CreateVmRequest({
          application: options.application,
          environment: options.environment,
          stack: options.stack,
          osVersion: options.osVersion,
          machineType: options.machineType,
          count: options.count,
          ...(options.metadata.length > 0 ? { metadata: Object.fromEntries(options.metadata) } : {})
        }, { disableValidation: true })
        const accepted = yield* client.vms.createRequest({ payload })
        // On stderr, so that stdout stays the table or the JSON (which carries them too).
        yield* Effect.forEach(accepted.warnings ?? [], (warning) => Console.error(`warning: ${warning}`), { discard: true })
        if (options.wait) {
          // Said before waiting, so that whoever stops the wait (Ctrl-C) still knows what was created.
          yield* Console.error(
            `accepted request ${accepted.id}; waiting for its VMs (Ctrl-C stops only the waiting: fleet vms get ${accepted.id} shows the request)\n` +
              table(["ID", "NAME"], accepted.vms.map((vm) => [vm.id, vm.name]))
          )
          const settled = yield* waitShowingProgress(client, accepted)
          yield* options.json ? printJson(settled) : Console.log(`request ${settled.id}: ${settled.state}\n${vmRows(settled.vms)}`)
          if (settled.state !== "ready") {
            yield* Console.error(notReadyReport(settled))
            yield* exitWithFailureStatus
          }
          return
        }
        if (options.json) return yield* printJson(accepted)
        yield* Console.log(`accepted: ${accepted.uri}`)
        yield* Console.log(table(["ID", "NAME"], accepted.vms.map((vm) => [vm.id, vm.name])))
      })
    )
).pipe(Command.withDescription(
  "Request VMs (one proctor execution each); --wait follows them until settled, and exits with status 1 unless the request ends ready"
))

const get = Command.make(
  "get",
  { ...connectionOptions, json: jsonOption, id: Args.text({ name: "id" }).pipe(Args.withDescription("a VM id or a request id")) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const id = yield* decodeId(Schema.UUID, options.id, "VM id or request id", "fleet vms list")
        const vm = yield* client.vms.getVm({ path: { id: VmId.make(id) } }).pipe(
          Effect.map(Option.some),
          // Not a VM's id: perhaps a request's. (A URL with a path has no such endpoint at all: said as such.)
          Effect.catchTag("NotFound", (notFound) => notFound.resource === "endpoint" ? Effect.fail(notFound) : Effect.succeedNone)
        )
        if (Option.isSome(vm)) {
          if (options.json) return yield* printJson(vm.value)
          yield* Console.log(vmRows([vm.value]))
          yield* Console.log("\nHISTORY")
          return yield* Console.log(table(["AT", "FROM", "TO", "REASON"], vm.value.history.map((event) => [event.at.toISOString(), event.from ?? "", event.to ?? "", event.reason])))
        }
        const request = yield* client.vms.getRequest({ path: { id: RequestId.make(id) } }).pipe(
          Effect.catchTag("NotFound", () => Effect.fail(new Error(`no VM and no VM request has the id ${id}`)))
        )
        if (options.json) return yield* printJson(request)
        yield* Console.log(`request ${request.id}: ${request.state} (${request.application}/${request.environment}, ${request.count} VMs)`)
        yield* Console.log(vmRows(request.vms))
      })
    )
).pipe(Command.withDescription("Show a VM (with its history) or a VM request"))

const list = Command.make(
  "list",
  {
    ...connectionOptions,
    json: jsonOption,
    application: Options.text("application").pipe(Options.optional, Options.withDescription("only this application's VMs, e.g. payments-api")),
    environment: Options.text("environment").pipe(Options.optional, Options.withDescription("only VMs in this environment, e.g. production")),
    stack: Options.text("stack").pipe(Options.optional, Options.withDescription("only VMs of this language stack, e.g. java")),
    osVersion: Options.text("os").pipe(Options.optional, Options.withDescription("only VMs on this OS version, e.g. ubuntu-20.04")),
    state: Options.choice("state", VmState.literals).pipe(
      Options.optional,
      Options.withDescription("only VMs in this state (without it: every state, decommissioned too)")
    ),
    limit: limitOption(50, 500),
    cursor: Options.text("cursor").pipe(
      Options.optional,
      Options.withDescription("the next page: the cursor a previous page ended with (give the same filters again)")
    )
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const page = yield* client.vms.listVms({
          urlParams: {
            application: Option.getOrUndefined(options.application),
            environment: Option.getOrUndefined(options.environment),
            stack: Option.getOrUndefined(options.stack),
            osVersion: Option.getOrUndefined(options.osVersion),
            state: Option.getOrUndefined(options.state),
            limit: options.limit,
            cursor: Option.getOrUndefined(options.cursor)
          }
        })
        if (options.json) return yield* printJson(page)
        yield* Console.log(vmRows(page.items))
        // On stderr: the table on stdout stays rows only, for a pipe.
        if (page.nextCursor !== null) yield* Console.error(`(more: add --cursor ${page.nextCursor} to the same command for the next page)`)
      })
    )
).pipe(Command.withDescription("List VMs, newest first, filtered; a page at a time (--limit), the next one with --cursor"))

/** One VM until it is settled, from the state the call that started its execution left it in. */
const followVm = (client: Client, started: VmDetail) =>
  waitShowingChanges(
    client.vms.getVm({ path: { id: started.id } }),
    (vm) => [vm],
    [[started.id, started.state]],
    (vm: Vm) => terminalVmStates.includes(vm.state),
    `VM ${started.id}`
  )

/**
 * A command that starts a proctor execution on one VM: prints the VM as the call left it, or with
 * --wait follows it until settled and exits with status 1 unless it ended `expected`.
 */
const vmAction = (
  name: string,
  call: (client: Client, id: VmId) => Effect.Effect<VmDetail, unknown>,
  expected: VmState,
  description: string
) =>
  Command.make(
    name,
    {
      ...connectionOptions,
      json: jsonOption,
      id: Args.text({ name: "vm-id" }).pipe(Args.withDescription("the VM's id")),
      wait: Options.boolean("wait").pipe(
        Options.withDescription(`wait until the VM is settled, showing each change of state on stderr; exit status 1 unless it ends ${expected}`)
      )
    },
    (options) =>
      explainFailure(
        Effect.gen(function* () {
          const client = yield* connect(options)
          const id = yield* decodeId(VmId, options.id, "VM id", "fleet vms list")
          const started = yield* call(client, id)
          if (!options.wait) return yield* options.json ? printJson(started) : Console.log(vmRows([started]))
          yield* Console.error(`${started.name}: ${stateAndReason(started)}; waiting (Ctrl-C stops only the waiting: fleet vms get ${id} shows the VM)`)
          const settled = yield* followVm(client, started)
          yield* options.json ? printJson(settled) : Console.log(vmRows([settled]))
          if (settled.state !== expected) {
            yield* Console.error(`error: VM ${settled.name} (${settled.id}) ended ${stateAndReason(settled)}, not ${expected}`)
            yield* exitWithFailureStatus
          }
        })
      )
  ).pipe(Command.withDescription(description))

const retry = vmAction(
  "retry",
  (client, id) => client.vms.retryVm({ path: { id } }),
  "ready",
  "Create a failed or timed-out VM again, under the same name (--wait follows it until settled)"
)

const decommission = vmAction(
  "decommission",
  (client, id) => client.vms.decommissionVm({ path: { id } }),
  "decommissioned",
  "Remove a ready VM with the catalog's decommission proc (--wait follows it until settled)"
)

export const vmsCommand = commandGroup("vms", "Create, show, list, retry and decommission VMs through a running fleet", [
  create,
  get,
  list,
  retry,
  decommission
])
