import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Duration, Effect, Option, Schema } from "effect"
import { numbered } from "../common/Numbering.js"
import { RunId, type RunView, StepState } from "../executor/Domain.js"
import { Plan } from "../planner/Domain.js"
import { PlanId } from "../planner/Records.js"
import { renderPlan } from "../planner/Report.js"
import { type Client, connect, connectionOptions, decodeId, explainFailure, jsonOption, limitOption } from "./Connection.js"
import { exitWithFailureStatus, printJson, table } from "./Output.js"
import { emit, formatOption, outOption } from "./PlanCommands.js"
import { commandGroup } from "./Help.js"

const uuidArg = (name: string, description: string) => Args.text({ name }).pipe(Args.withDescription(description))

/** A run's progress on one line: the bar, how the finished steps ended, what is under way, the wave, the ETA. */
export const progressLine = (run: Pick<RunView, "state" | "pauseReason" | "percent" | "counts" | "steps" | "eta" | "currentWave" | "waves">): string => {
  const width = 30
  const filled = Math.round((run.percent / 100) * width)
  const bar = `${"#".repeat(filled)}${".".repeat(width - filled)}`
  const { counts } = run
  const finished = counts.done + counts.failed + counts.cancelled + counts.rolled_back
  // How they ended: a cancelled run is "finished" without a step done, which the count alone hides.
  const endings = [
    `${counts.done} done`,
    `${counts.failed} failed`,
    ...(counts.cancelled > 0 ? [`${counts.cancelled} cancelled`] : []),
    ...(counts.rolled_back > 0 ? [`${counts.rolled_back} rolled back`] : [])
  ].join(", ")
  const under = counts.creating + counts.checking + counts.baking + counts.decommissioning + counts.rolling_back
  const queued = counts.queued > 0 ? `, ${counts.queued} queued` : ""
  const eta = run.eta === null ? "" : `, ETA ${run.eta.toISOString().slice(11, 19)}`
  const paused = run.pauseReason === null ? "" : ` (${run.pauseReason})`
  return `${run.state}${paused} [${bar}] ${run.percent.toFixed(1)}% ${finished}/${run.steps} finished (${endings}), ${under} under way${queued}, ` +
    `wave ${numbered(Math.min(run.currentWave, run.waves - 1))}/${run.waves}${eta}`
}

const describeRun = (run: RunView): string =>
  [
    `run ${run.id} of plan ${run.name} (${run.trigger}, by ${run.createdBy})`,
    progressLine(run),
    ...(run.reason === null ? [] : [`last: ${run.reason}`]),
    ...run.recentFailures.map((failure) => `  failed step ${numbered(failure.step)} (${failure.vm}, ${failure.fleet}): ${failure.reason}`)
  ].join("\n")

/** How a followed run is shown: as text (progress, then the run described) or as the final run in JSON. */
type FollowOutput = "text" | "json"

/**
 * Shows a run's progress until it ends: one redrawn line in a terminal, a line per change otherwise;
 * then the run, and exit status 1 unless it succeeded. With JSON output stdout carries only the
 * final run (as `runs show --json` prints it) and the progress goes to stderr.
 */
const follow = (client: Client, id: RunId, intervalMs: number, output: FollowOutput) => {
  const progress = output === "json" ? process.stderr : process.stdout
  const tty = progress.isTTY === true
  return Effect.gen(function* () {
    let last = ""
    while (true) {
      const run = yield* client.runs.getRun({ path: { id } })
      const line = progressLine(run)
      if (line !== last) {
        yield* Effect.sync(() => progress.write(tty ? `\r\x1b[2K${line}` : `${line}\n`))
        last = line
      }
      if (!["running", "paused", "cancelling", "aborting"].includes(run.state)) {
        if (tty) yield* Effect.sync(() => progress.write("\n"))
        yield* output === "json" ? printJson(run) : Console.log(describeRun(run))
        if (run.state !== "succeeded") yield* exitWithFailureStatus
        return run
      }
      yield* Effect.sleep(Duration.millis(intervalMs))
    }
  }).pipe(
    // Stopping a watch is not stopping the run: say so, and how to stop the run.
    Effect.onInterrupt(() =>
      Effect.sync(() =>
        process.stderr.write(
          `${tty ? "\n" : ""}stopped watching: run ${id} goes on ` +
            `(fleet runs watch ${id} to watch it again, fleet runs cancel ${id} to stop it)\n`
        )
      )
    )
  )
}

/**
 * Each look is a request, and the API allows a token 50 a second by default (FLEET_RATE_LIMIT, bursts
 * of FLEET_RATE_BURST=100): at 0 ms a watch spends the burst in well under a second and then fails
 * with 429. At 100 ms a watch takes a fifth of the default rate, leaving room for a few watches and
 * the other commands of the same token.
 */
const minimumIntervalMs = 100

const intervalOption = Options.integer("interval-ms").pipe(
  Options.withDefault(1000),
  Options.mapEffect((intervalMs) =>
    intervalMs >= minimumIntervalMs
      ? Effect.succeed(intervalMs)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(
        `--interval-ms ${intervalMs} is too short: expected at least ${minimumIntervalMs} (milliseconds), ` +
          "as every look is a request and the API limits each token's rate"
      )))
  ),
  Options.withDescription(`how often to look, in milliseconds (at least ${minimumIntervalMs})`)
)

const followJsonOption = Options.boolean("json").pipe(
  Options.withDescription("print only the final run, as JSON (as runs show --json does), on stdout; the progress goes to stderr")
)

const idOptions = { ...connectionOptions, json: jsonOption, id: uuidArg("run-id", "the run's id") }

const withRun = (verb: string, act: (client: Client, id: RunId) => Effect.Effect<RunView, unknown>) =>
  Command.make(verb, idOptions, (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const run = yield* act(client, yield* decodeId(RunId, options.id, "run id", "fleet runs list"))
        yield* options.json ? printJson(run) : Console.log(describeRun(run))
      })
    ))

const watch = Command.make(
  "watch",
  { ...idOptions, json: followJsonOption, interval: intervalOption },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        yield* follow(client, yield* decodeId(RunId, options.id, "run id", "fleet runs list"), options.interval, options.json ? "json" : "text")
      })
    )
).pipe(Command.withDescription(
  "Follow a run with a live progress bar until it ends (exit code 1 unless it succeeded); " +
    "with --json, stdout gets only the final run as one JSON document and the progress goes to stderr"
))

const list = Command.make(
  "list",
  { ...connectionOptions, json: jsonOption, limit: limitOption(20, 1000) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const runs = yield* client.runs.listRuns({ urlParams: { limit: options.limit } })
        if (options.json) return yield* printJson(runs)
        yield* Console.log(table(
          ["ID", "PLAN", "STATE", "TRIGGER", "DONE", "FAILED", "STEPS", "CREATED"],
          runs.items.map((run) => [
            run.id, run.name, run.pauseReason === null ? run.state : `${run.state} (${run.pauseReason})`, run.trigger,
            String(run.counts.done), String(run.counts.failed), String(run.steps), run.createdAt.toISOString()
          ])
        ))
      })
    )
).pipe(Command.withDescription("Recent runs, newest first"))

const steps = Command.make(
  "steps",
  { ...idOptions, state: Options.choice("state", StepState.literals).pipe(Options.optional, Options.withDescription("only the steps in this state")) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const id = yield* decodeId(RunId, options.id, "run id", "fleet runs list")
        const page = yield* client.runs.listSteps({ path: { id }, urlParams: { state: Option.getOrUndefined(options.state), limit: 1000 } })
        if (options.json) return yield* printJson(page)
        yield* Console.log(table(
          ["#", "WAVE", "FLEET", "OLD VM", "NEW VM", "STATE", "REASON"],
          page.items.map((step) => [numbered(step.index), numbered(step.wave), step.fleet, step.oldVm.name, step.newVm?.name ?? "", step.state, step.reason ?? ""])
        ))
      })
    )
).pipe(Command.withDescription("A run's steps (one per VM replaced)"))

const plan = Command.make(
  "plan",
  { ...connectionOptions, id: uuidArg("run-id", "the run's id"), format: formatOption, out: outOption },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const id = yield* decodeId(RunId, options.id, "run id", "fleet runs list")
        const executed = yield* client.runs.getRunPlan({ path: { id }, urlParams: { format: "json" } })
        const text = options.format === "json"
          ? `${JSON.stringify(Schema.encodeSync(Plan)(executed), null, 2)}\n`
          : renderPlan(executed, options.format)
        yield* emit(text, options.out)
      })
    )
).pipe(Command.withDescription("The plan a run executes, as a report (a scheduled run's: as recomputed when it fired)"))

export const runsCommand = commandGroup("runs", "Follow and control runs of plans on a running fleet", [
    list,
    withRun("show", (client, id) => client.runs.getRun({ path: { id } })).pipe(Command.withDescription("A run's state, progress and failures")),
    watch,
    steps,
    plan,
    withRun("pause", (client, id) => client.runs.pauseRun({ path: { id } })).pipe(Command.withDescription("No new step starts; steps under way finish")),
    withRun("resume", (client, id) => client.runs.resumeRun({ path: { id } })).pipe(
      Command.withDescription("Resume a paused run (this also approves a wave waiting for approval)")
    ),
    withRun("cancel", (client, id) => client.runs.cancelRun({ path: { id } })).pipe(
      Command.withDescription("Stop starting steps; steps under way finish, so each VM is replaced or untouched")
    )
  ])

export const applyCommand = Command.make(
  "apply",
  {
    ...connectionOptions,
    json: Options.boolean("json").pipe(
      Options.withDescription("print the started run as JSON; with --watch, only the final run (as runs watch --json does)")
    ),
    plan: uuidArg("plan-id", "a saved plan's id (fleet plan <file> saves one)"),
    rollbackOnAbort: Options.boolean("rollback-on-abort").pipe(
      Options.withDescription("if the failure budget aborts the run, remove the replacements not yet swapped in")
    ),
    watch: Options.boolean("watch").pipe(Options.withDescription("follow the run until it ends"))
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const client = yield* connect(options)
        const planId = yield* decodeId(PlanId, options.plan, "plan id", "fleet plans list")
        const started = yield* client.runs.startRun({ path: { id: planId }, payload: { rollbackOnAbort: options.rollbackOnAbort } })
        if (options.json && !options.watch) return yield* printJson(started)
        const startedLine = `started run ${started.id}: ${started.steps} step(s) in ${started.fleets} fleet(s) — ${started.uri}`
        // With --json stdout is kept for the final run alone.
        yield* options.json ? Console.error(startedLine) : Console.log(startedLine)
        if (options.watch) yield* follow(client, started.id, 1000, options.json ? "json" : "text")
      })
    )
).pipe(Command.withDescription("Run a saved plan (it is verified against the current inventory first: a stale plan is refused)"))
