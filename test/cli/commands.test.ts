import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { type AddressInfo } from "node:net"
import { createServer, type Server } from "node:http"
import { waitForRequest } from "../../src/client/Client.js"
import { RunId, RunView } from "../../src/executor/Domain.js"
import { PlanService } from "../../src/planner/PlanService.js"
import { CreateVmRequest, RequestId } from "../../src/vms/Domain.js"
import { runCli, startCli } from "../support/Cli.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"

/** `fleet …` against the test fleet, the way a person runs it: FLEET_URL and FLEET_TOKEN set, no database of its own. */
const startFleetCli = (fleet: TestFleet, args: ReadonlyArray<string>) => startCli(args, { FLEET_URL: fleet.baseUrl, FLEET_TOKEN: fleet.token })

/** The same, to its end. */
const runFleetCli = (fleet: TestFleet, args: ReadonlyArray<string>) => runCli(args, { FLEET_URL: fleet.baseUrl, FLEET_TOKEN: fleet.token })

const createArgs = ["vms", "create", "-a", "payments-api", "-e", "production", "-s", "java", "--os", "ubuntu-24.04", "-m", "n2-standard-4"]

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

/** The ids in the first column of a VM table. */
const tableIds = (text: string) => [...text.matchAll(new RegExp(`^(${uuid})  `, "gm"))].map((match) => match[1]!)

describe("fleet vms create --wait", () => {
  it.scopedLive("exits 1 when the request ends failed, naming each VM with its reason on stderr; exits 0 when it ends ready", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { executionFailureRate: 1 } })

      const failed = yield* runFleetCli(fleet, [...createArgs, "--count", "2", "--wait"])
      expect(failed.code).toBe(1)
      const requestId = new RegExp(`^request (${uuid}): failed$`, "m").exec(failed.stdout)?.[1]
      expect(requestId).toBeDefined()
      const request = yield* fleet.client.vms.getRequest({ path: { id: RequestId.make(requestId!) } })
      expect(request.vms).toHaveLength(2)
      expect(failed.stderr).toContain(`error: request ${requestId} ended failed: 2 of 2 VMs not ready`)
      for (const vm of request.vms) {
        expect(vm.reason).toMatch(/ended in (POD_FAILED|JOB_CREATION_FAILED)/)
        expect(failed.stderr).toContain(`  - ${vm.name} (${vm.id}): failed (${vm.reason})`)
        // The progress shown while waiting: the VM's move to failed.
        expect(failed.stderr).toContain(`  ${vm.name}: failed (${vm.reason})`)
      }

      yield* fleet.simulator.configure({ executionFailureRate: 0 })
      const ready = yield* runFleetCli(fleet, [...createArgs, "--wait", "--json"])
      expect(ready.code).toBe(0)
      const settled = JSON.parse(ready.stdout) as { state: string; vms: Array<{ name: string }> }
      expect(settled.state).toBe("ready")
      expect(ready.stderr).toContain(`  ${settled.vms[0]!.name}: ready`)
      expect(ready.stderr).not.toContain("error:")
    }), 120_000)

  it.scopedLive("prints the request id and its VMs on stderr before it waits, so that after a Ctrl-C the user knows what was created", () =>
    Effect.gen(function* () {
      // Executions stuck in proctor: the request stays in progress for as long as the test needs.
      const fleet = yield* startFleet({ simulator: { stuckRate: 1 } })
      const cli = yield* startFleetCli(fleet, [...createArgs, "--count", "2", "--wait"])
      const announced = yield* cli.stderrMatching(new RegExp(`^accepted request (${uuid});.*\\n.*\\n.*\\n.*\\n`, "m"))
      const request = yield* fleet.client.vms.getRequest({ path: { id: RequestId.make(announced[1]!) } })
      expect(request.state).toBe("in_progress")
      yield* cli.interrupt
      const ended = yield* cli.exited
      // Interrupted before the request settled: not a success (130, as a shell says of an interrupted program).
      expect(ended.code).toBe(130)
      expect(ended.stdout).toBe("")
      expect(ended.stderr).toContain(`fleet vms get ${request.id} shows the request`)
      for (const vm of request.vms) expect(ended.stderr).toContain(`${vm.id}  ${vm.name}`)
    }), 120_000)
})

/** One VM on ubuntu-20.04, ready, and a saved plan that replaces it: a run of one step. */
const planOfOneStep = (fleet: TestFleet) =>
  Effect.gen(function* () {
    const accepted = yield* fleet.client.vms.createRequest({
      payload: new CreateVmRequest({ application: "billing", environment: "staging", stack: "go", osVersion: "ubuntu-20.04", machineType: "e2-small", count: 1 })
    })
    const old = yield* waitForRequest(fleet.client, accepted.id, { initialDelay: "20 millis", maxDelay: "100 millis" })
    expect(old.state).toBe("ready")
    const saved = yield* fleet.use(Effect.flatMap(PlanService, (plans) =>
      plans.save("name: retire-2004\nselect:\n  osVersions: [ubuntu-20.04]\ntarget: ubuntu-24.04\n", "test", { email: "planner@example.com" })))
    return saved.id
  })

/** The progress line of a run that ended with its one step done. */
const finishedProgress = /^succeeded \[#{30}\] 100\.0% 1\/1 finished/m

describe("fleet runs watch and apply --watch", () => {
  it.scopedLive("runs watch --json prints only the final run as JSON on stdout (as runs show --json does), the progress on stderr", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      const started = yield* fleet.client.runs.startRun({ path: { id: yield* planOfOneStep(fleet) }, payload: {} })

      const watched = yield* runFleetCli(fleet, ["runs", "watch", started.id, "--json"])
      expect(watched.code).toBe(0)
      const finalRun = Schema.decodeUnknownSync(RunView)(JSON.parse(watched.stdout))
      expect(finalRun).toMatchObject({ id: started.id, state: "succeeded", counts: { done: 1 } })
      expect(watched.stderr).toMatch(finishedProgress)
    }), 120_000)

  it.scopedLive("apply --watch --json prints only the final run as JSON on stdout, the start and the progress on stderr", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      const applied = yield* runFleetCli(fleet, ["apply", yield* planOfOneStep(fleet), "--watch", "--json"])
      expect(applied.code).toBe(0)
      const finalRun = Schema.decodeUnknownSync(RunView)(JSON.parse(applied.stdout))
      expect(finalRun.state).toBe("succeeded")
      expect(applied.stderr).toContain(`started run ${finalRun.id}: 1 step(s) in 1 fleet(s)`)
      expect(applied.stderr).toMatch(finishedProgress)
    }), 120_000)

  it.scopedLive("Ctrl-C stops only the watching: it says the run goes on, and how to stop it", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet()
      const planId = yield* planOfOneStep(fleet)
      // The replacement's creation stays in proctor: the run is still running when the watch is stopped.
      yield* fleet.simulator.configure({ stuckRate: 1 })
      const cli = yield* startFleetCli(fleet, ["apply", planId, "--watch", "--json"])
      const runId = (yield* cli.stderrMatching(new RegExp(`^started run (${uuid}):`, "m")))[1]!
      yield* cli.stderrMatching(/ 0\/1 finished /)
      yield* cli.interrupt
      const ended = yield* cli.exited
      expect(ended.code).toBe(130)
      expect(ended.stdout).toBe("")
      expect(ended.stderr).toContain(
        `stopped watching: run ${runId} goes on (fleet runs watch ${runId} to watch it again, fleet runs cancel ${runId} to stop it)\n`
      )
      expect((yield* fleet.client.runs.getRun({ path: { id: RunId.make(runId) } })).state).toBe("running")
    }), 120_000)

  it.scopedLive("runs watch refuses an --interval-ms below 100, naming the option, and accepts 100", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const missingRun = randomUUID()

      const tooShort = yield* runFleetCli(fleet, ["runs", "watch", missingRun, "--interval-ms", "0"])
      expect(tooShort.code).toBe(1)
      expect(tooShort.stderr).toContain("--interval-ms 0 is too short: expected at least 100 (milliseconds)")

      // 100 passes the check: what stops this watch is the API's answer about the run.
      const shortest = yield* runFleetCli(fleet, ["runs", "watch", missingRun, "--interval-ms", "100"])
      expect(shortest.code).toBe(1)
      expect(shortest.stderr).not.toContain("--interval-ms")
      expect(shortest.stderr).toContain(missingRun)
    }), 120_000)
})

describe("fleet vms list", () => {
  it.scopedLive("says which --cursor to pass for the next page, and --cursor continues there", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const accepted = yield* fleet.client.vms.createRequest({
        payload: new CreateVmRequest({ application: "payments-api", environment: "production", stack: "java", osVersion: "ubuntu-24.04", machineType: "e2-small", count: 3 })
      })

      const first = yield* runFleetCli(fleet, ["vms", "list", "--limit", "2"])
      expect(first.code).toBe(0)
      expect(tableIds(first.stdout)).toHaveLength(2)
      const cursor = /^\(more: add --cursor (\S+) to the same command for the next page\)$/m.exec(first.stderr)?.[1]
      expect(cursor).toBeDefined()

      const second = yield* runFleetCli(fleet, ["vms", "list", "--limit", "2", "--cursor", cursor!])
      expect(second.code).toBe(0)
      expect(second.stderr).not.toContain("more:")
      expect([...tableIds(first.stdout), ...tableIds(second.stdout)].sort()).toEqual(accepted.vms.map((vm) => vm.id).sort())
    }), 120_000)
})

describe("fleet vms retry and decommission", () => {
  it.scopedLive("retry --wait brings a failed VM up, decommission --wait removes it; each exits 1 when the VM does not end as asked", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { executionFailureRate: 1 } })
      const accepted = yield* fleet.client.vms.createRequest({
        payload: new CreateVmRequest({ application: "billing", environment: "staging", stack: "go", osVersion: "ubuntu-24.04", machineType: "e2-small", count: 1 })
      })
      const failed = yield* waitForRequest(fleet.client, accepted.id, { initialDelay: "20 millis", maxDelay: "100 millis" })
      const vm = failed.vms[0]!
      expect(vm.state).toBe("failed")

      // Failing again: the retry ends failed, and says so.
      const failedAgain = yield* runFleetCli(fleet, ["vms", "retry", vm.id, "--wait"])
      expect(failedAgain.code).toBe(1)
      expect(failedAgain.stderr).toContain(`${vm.name}: pending (creation retried with the same name); waiting`)
      expect(failedAgain.stderr).toMatch(new RegExp(`^error: VM ${vm.name} \\(${vm.id}\\) ended failed \\(.+\\), not ready$`, "m"))

      yield* fleet.simulator.configure({ executionFailureRate: 0 })
      const retried = yield* runFleetCli(fleet, ["vms", "retry", vm.id, "--wait"])
      expect(retried.code).toBe(0)
      expect(retried.stderr).toContain(`  ${vm.name}: ready`)
      expect(tableIds(retried.stdout)).toEqual([vm.id])
      expect(retried.stdout).toMatch(new RegExp(`^${vm.id}  ${vm.name}  ready `, "m"))

      // A ready VM is not retried: the API's 409, said as it is.
      const notFailed = yield* runFleetCli(fleet, ["vms", "retry", vm.id])
      expect(notFailed.code).toBe(1)
      expect(notFailed.stderr).toBe(`error: VM ${vm.name} is ready; expected failed or timed_out\n`)

      const removed = yield* runFleetCli(fleet, ["vms", "decommission", vm.id, "--wait", "--json"])
      expect(removed.code).toBe(0)
      expect(JSON.parse(removed.stdout)).toMatchObject({ id: vm.id, state: "decommissioned" })
      expect((yield* fleet.client.vms.getVm({ path: { id: vm.id } })).state).toBe("decommissioned")

      const twice = yield* runFleetCli(fleet, ["vms", "decommission", vm.id])
      expect(twice.code).toBe(1)
      expect(twice.stderr).toBe(`error: VM ${vm.name} is decommissioned; expected ready\n`)

      const notAnId = yield* runFleetCli(fleet, ["vms", "decommission", "payments-1"])
      expect([notAnId.code, notAnId.stderr]).toEqual([1, "error: VM id: expected a VM id (a UUID, as fleet vms list shows), not payments-1\n"])
    }), 120_000)
})

describe("reaching fleet", () => {
  it.scopedLive("says what to fix: a URL that is not one, a fleet that is not there, a token it refuses or none, an id nothing has", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ reconcile: false })
      const notUrl = yield* runCli(["vms", "list"], { FLEET_URL: "localhost:8080", FLEET_TOKEN: fleet.token })
      expect([notUrl.code, notUrl.stderr]).toEqual([
        1, "error: url: expected fleet's base URL such as http://127.0.0.1:8080 (--url or FLEET_URL), not localhost:8080\n"
      ])
      const notThere = yield* runCli(["vms", "list"], { FLEET_URL: "http://127.0.0.1:9", FLEET_TOKEN: fleet.token })
      expect(notThere.code).toBe(1)
      expect(notThere.stderr).toBe(
        "error: cannot reach fleet at http://127.0.0.1:9/v1/vms (connect ECONNREFUSED 127.0.0.1:9): is it running, and is --url (FLEET_URL) right?\n"
      )
      const refused = yield* runCli(["vms", "list"], { FLEET_URL: fleet.baseUrl, FLEET_TOKEN: "fleet_not-a-token" })
      expect(refused.code).toBe(1)
      expect(refused.stderr).toBe(
        "error: fleet refused the API token: set FLEET_TOKEN (or --token) to a token that is valid " +
          "(embedded mode prints one at every start; fleet tokens create makes one)\n"
      )
      const none = yield* runCli(["vms", "list"], { FLEET_URL: fleet.baseUrl, FLEET_TOKEN: "" })
      expect([none.code, none.stderr]).toEqual([
        1, "error: token: no API token: set FLEET_TOKEN (or --token); embedded mode prints one at every start, fleet tokens create makes one\n"
      ])
      const unknown = randomUUID()
      const nothing = yield* runFleetCli(fleet, ["vms", "get", unknown])
      expect([nothing.code, nothing.stderr]).toEqual([1, `error: no VM and no VM request has the id ${unknown}\n`])
      // A base URL with a path: fleet is there, its endpoints are not, for any command.
      const advice = (endpoint: string) =>
        `error: fleet has no endpoint ${endpoint}: is --url (FLEET_URL) fleet's base URL, such as http://127.0.0.1:8080, without a path?\n`
      const withPath = yield* runCli(["vms", "list"], { FLEET_URL: `${fleet.baseUrl}/fleet`, FLEET_TOKEN: fleet.token })
      expect([withPath.code, withPath.stderr]).toEqual([1, advice("GET /fleet/v1/vms")])
      const getWithPath = yield* runCli(["vms", "get", unknown], { FLEET_URL: `${fleet.baseUrl}/fleet`, FLEET_TOKEN: fleet.token })
      expect([getWithPath.code, getWithPath.stderr]).toEqual([1, advice(`GET /fleet/v1/vms/${unknown}`)])
      // A proxy in front of fleet, failing: a fault on that side, not a wrong URL.
      const proxy = yield* Effect.acquireRelease(
        Effect.async<Server>((resume) => {
          const server = createServer((request, response) =>
            request.url?.startsWith("/v1/runs/") === true
              ? response.writeHead(404, { "content-type": "text/html" }).end("<h1>Not Found</h1>")
              : response.writeHead(502, { "content-type": "text/html" }).end("<h1>Bad Gateway</h1>"))
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.sync(() => server.close())
      )
      const proxied = { FLEET_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, FLEET_TOKEN: fleet.token }
      const failing = yield* runCli(["vms", "list"], proxied)
      expect([failing.code, failing.stderr]).toEqual([
        1, "error: fleet answered GET /v1/vms with 502: a fault on its side, which its log explains; try again, or tell whoever runs it\n"
      ])
      // An answer where the endpoint's own 404 was due, but not fleet's: not taken for a mistake in the input.
      const notFleet = yield* runCli(["runs", "show", unknown], proxied)
      expect([notFleet.code, notFleet.stderr]).toEqual([
        1, "error: fleet's answer could not be read (Could not parse JSON): is --url (FLEET_URL) fleet's base URL, and fleet as new as this CLI?\n"
      ])
      // Input the client refuses to send is listed as the API lists it.
      const tooLong = yield* runFleetCli(fleet, ["vms", "list", "--application", "a".repeat(101), "--cursor", "c".repeat(201)])
      expect([tooLong.code, tooLong.stderr]).toEqual([
        1, "error: 2 problems\n  - application: expected an application name of at most 100 characters\n  - cursor: expected a cursor returned by a previous page\n"
      ])
      const noEquals = yield* runFleetCli(fleet, [...createArgs, "--metadata", "team"])
      expect(noEquals.stderr).toBe(
        "error: fleet vms create: --metadata team: expected key=value, such as team=payments\n(fleet vms create --help: its arguments and options)\n"
      )
    }), 120_000)
})
