import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { createVmsAndWait } from "../client/Client.js"
import { InvalidInput } from "../common/Errors.js"
import { CreateVmRequest, RequestId, type Vm, VmId, VmState } from "../vms/Domain.js"
import { connect, connectionOptions, explainFailure, jsonOption } from "./Connection.js"
import { printJson, table } from "./Output.js"

const vmRows = (vms: ReadonlyArray<Vm>) =>
  table(
    ["ID", "NAME", "STATE", "APPLICATION", "ENV", "STACK", "OS", "REASON"],
    vms.map((vm) => [vm.id, vm.name, vm.state, vm.application, vm.environment, vm.stack, vm.osVersion, vm.reason ?? ""])
  )

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
    metadata: Options.keyValueMap("metadata").pipe(Options.optional, Options.withDescription("key=value, repeatable")),
    wait: Options.boolean("wait").pipe(Options.withDescription("wait until every VM is ready, failed or timed out"))
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
          ...(Option.isSome(options.metadata) ? { metadata: Object.fromEntries(options.metadata.value) } : {})
        }, { disableValidation: true })
        if (options.wait) {
          const settled = yield* createVmsAndWait(client, payload)
          return yield* options.json ? printJson(settled) : Console.log(`request ${settled.id}: ${settled.state}\n${vmRows(settled.vms)}`)
        }
        const accepted = yield* client.vms.createRequest({ payload })
        if (options.json) return yield* printJson(accepted)
        yield* Console.log(`accepted: ${accepted.uri}`)
        yield* Console.log(table(["ID", "NAME"], accepted.vms.map((vm) => [vm.id, vm.name])))
      })
    )
).pipe(Command.withDescription("Request VMs (one proctor execution each); --wait follows them until settled"))

const get = Command.make(
  "get",
  { ...connectionOptions, json: jsonOption, id: Args.text({ name: "id" }).pipe(Args.withDescription("a VM id or a request id")) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const id = yield* Schema.decodeUnknown(Schema.UUID)(options.id).pipe(
          Effect.mapError(() => InvalidInput.one("id", "expected a VM id or a request id (a UUID)"))
        )
        const vm = yield* client.vms.getVm({ path: { id: VmId.make(id) } }).pipe(
          Effect.map(Option.some),
          Effect.catchTag("NotFound", () => Effect.succeedNone)
        )
        if (Option.isSome(vm)) {
          if (options.json) return yield* printJson(vm.value)
          yield* Console.log(vmRows([vm.value]))
          yield* Console.log("\nHISTORY")
          return yield* Console.log(table(["AT", "FROM", "TO", "REASON"], vm.value.history.map((event) => [event.at.toISOString(), event.from ?? "", event.to ?? "", event.reason])))
        }
        const request = yield* client.vms.getRequest({ path: { id: RequestId.make(id) } })
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
    application: Options.text("application").pipe(Options.optional),
    environment: Options.text("environment").pipe(Options.optional),
    stack: Options.text("stack").pipe(Options.optional),
    osVersion: Options.text("os").pipe(Options.optional),
    state: Options.choice("state", VmState.literals).pipe(Options.optional),
    limit: Options.integer("limit").pipe(Options.withDefault(50))
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
            limit: options.limit
          }
        })
        if (options.json) return yield* printJson(page)
        yield* Console.log(vmRows(page.items))
        if (page.nextCursor !== null) yield* Console.log(`(more: ${page.nextCursor})`)
      })
    )
).pipe(Command.withDescription("List VMs, newest first, filtered"))

export const vmsCommand = Command.make("vms").pipe(
  Command.withDescription("Create, show and list VMs through a running fleet"),
  Command.withSubcommands([create, get, list])
)
