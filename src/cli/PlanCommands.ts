/**
 * `fleet plan <file>` and `fleet plans list | show | verify`: the planner from a terminal. They work
 * on the database directly (DATABASE_URL, or the embedded one), so they need no running server:
 * `fleet demo seed` then `fleet plan plans/retire-deprecated.yaml --dry-run` works on a fresh machine.
 */
import { Args, Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Clock, Config, Console, Effect, Layer, Option, Schema } from "effect"
import { hostname, userInfo } from "node:os"
import { InvalidInput, invalidInputFromParseError } from "../common/Errors.js"
import { IsoTime } from "../common/QueryParams.js"
import type { Plan, PlanSchedule } from "../planner/Domain.js"
import { PlanService } from "../planner/PlanService.js"
import { PlanId, type SavedPlan, SavedPlan as SavedPlanSchema, SavedPlanSummary } from "../planner/Records.js"
import { renderPlan, reportFormats, type ReportFormat } from "../planner/Report.js"
import { humanDuration, summaryLine } from "../planner/ReportFormat.js"
import { decodeId, explainFailure, jsonOption, limitOption } from "./Connection.js"
import { CliLoggerLive, LocalDatabaseLive } from "./LocalDatabase.js"
import { printJson, table } from "./Output.js"
import { commandGroup } from "./Help.js"

/** The planner's services on the local database, logging to stderr. */
export const PlannerLocalLive = PlanService.Default.pipe(
  Layer.provideMerge(LocalDatabaseLive),
  Layer.provideMerge(CliLoggerLive)
)

/** Who runs the command, recorded as created_by: FLEET_ACTOR, else user@host. */
export const cliActor = Config.string("FLEET_ACTOR").pipe(
  Config.orElse(() =>
    Config.sync(() => {
      try {
        return `${userInfo().username}@${hostname()}`
      } catch {
        return `unknown@${hostname()}`
      }
    })
  ),
  Effect.map((email) => ({ email }))
)

export const formatOption = Options.choice("format", reportFormats).pipe(
  Options.withAlias("f"),
  Options.withDefault("text" as ReportFormat),
  Options.withDescription("report format: text (a terminal), markdown (a pull request), json (the plan itself), html (one self-contained page)")
)

export const outOption = Options.file("out").pipe(
  Options.withAlias("o"),
  Options.optional,
  Options.withDescription("write the report to this file instead of stdout")
)

/** Writes `text` to the file, or to stdout. */
export const emit = (text: string, out: Option.Option<string>) =>
  Option.match(out, {
    onNone: () => Console.log(text.endsWith("\n") ? text.slice(0, -1) : text),
    onSome: (path) =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(path, text).pipe(
          Effect.mapError((error) => InvalidInput.one(["out"], `cannot write ${path}: ${error.message}`))
        )
        yield* Console.error(`wrote ${path} (${Buffer.byteLength(text, "utf8").toLocaleString("en-US")} bytes)`)
      })
  })

const parseAsOf = (text: string) =>
  Schema.decodeUnknown(IsoTime)(text).pipe(
    Effect.mapError((error) => {
      const expected = invalidInputFromParseError(error).issues[0]?.message ?? "expected a time"
      return InvalidInput.one(["as-of"], expected.includes(text) ? expected : `${expected}, not ${text}`)
    })
  )


const savedLines = (saved: SavedPlan): string =>
  [
    `saved plan ${saved.id}: ${saved.name}`,
    `  ${summaryLine(saved.plan)}`,
    `  plan hash ${saved.planHash}`,
    `  inventory digest ${saved.inventoryDigest} (as of ${saved.asOf})`,
    ...scheduleLines(saved.plan.estimate.schedule),
    `  report: fleet plans show ${saved.id} --format html --out plan.html`
  ].join("\n")

/** A saved plan with a schedule runs on its own: saying so when it is saved leaves no surprise. */
const scheduleLines = (schedule: PlanSchedule | undefined): ReadonlyArray<string> =>
  schedule === undefined
    ? []
    : [`  scheduled: the controllers run it on "${schedule.cron}" (${schedule.timeZone})` +
      `${schedule.nextWindows[0] === undefined ? "" : `, next at ${schedule.nextWindows[0]}`}; a newer plan of the same name replaces it`]

const warningsOf = (plan: Plan) => Effect.forEach(plan.warnings, (warning) => Console.error(`warning: ${warning}`), { discard: true })

export const planCommand = Command.make(
  "plan",
  {
    file: Args.file({ name: "file", exists: "yes" }).pipe(Args.withDescription("a recycle plan (YAML or JSON), e.g. plans/retire-deprecated.yaml")),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("compute the plan and print the report; change nothing")),
    format: formatOption,
    out: outOption,
    asOf: Options.text("as-of").pipe(
      Options.optional,
      Options.withDescription("with --dry-run: plan as of this day or instant (2025-09-01, 2025-09-01T12:00:00Z) instead of now")
    )
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const text = yield* fs.readFileString(options.file).pipe(
          Effect.mapError((error) => InvalidInput.one(["file"], `cannot read ${options.file}: ${error.message}`))
        )
        if (options.dryRun) {
          const now = Option.isSome(options.asOf) ? yield* parseAsOf(options.asOf.value) : new Date(yield* Clock.currentTimeMillis)
          const started = performance.now()
          const plan = yield* (yield* PlanService).dryRun(text, options.file, now)
          yield* Effect.logInfo(`Planned in ${Math.round(performance.now() - started)} ms`)
          yield* warningsOf(plan)
          return yield* emit(renderPlan(plan, options.format), options.out)
        }
        if (Option.isSome(options.asOf)) {
          return yield* Effect.fail(InvalidInput.one(["as-of"], "--as-of only goes with --dry-run: a saved plan is made as of now, as the executor will check it"))
        }
        const actor = yield* cliActor
        // The report is written before the plan is saved: a report that cannot be written saves nothing.
        const saved = yield* (yield* PlanService).save(text, options.file, actor, {
          admit: (plan) => Option.isSome(options.out) ? emit(renderPlan(plan, options.format), options.out) : Effect.void
        })
        yield* warningsOf(saved.plan)
        if (options.format === "json" && Option.isNone(options.out)) return yield* printJson(Schema.encodeSync(SavedPlanSummary)(saved.summary))
        yield* Console.log(savedLines(saved))
      }).pipe(Effect.provide(PlannerLocalLive))
    )
).pipe(
  Command.withDescription(
    "Compute a plan from a recycle plan (YAML under plans/) against the inventory and the deprecation policies in the database. " +
      "With --dry-run, print the report and change nothing. Without it, save the plan (with its hash and the inventory digest " +
      "it was computed from) for the executor, and print its id. Works without a running server: it reads DATABASE_URL, " +
      "or the embedded database (which must not be open in a running `fleet serve` at the same time). " +
      "Example: fleet plan plans/retire-deprecated.yaml --dry-run --format html --out report.html"
  )
)

const list = Command.make(
  "list",
  {
    json: jsonOption,
    limit: limitOption(50, 500)
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const plans = yield* (yield* PlanService).list(options.limit)
        if (options.json) return yield* printJson(Schema.encodeSync(Schema.Array(SavedPlanSummary))(plans.items))
        if (plans.items.length === 0) return yield* Console.log("No saved plans yet. Save one with: fleet plan plans/retire-deprecated.yaml")
        yield* Console.log(table(
          ["ID", "NAME", "CREATED", "BY", "FLEETS", "VMS", "WAVES", "SKIPPED", "ESTIMATE"],
          plans.items.map((plan) => [
            plan.id,
            plan.name,
            plan.createdAt.toISOString().slice(0, 19).replace("T", " "),
            plan.createdBy,
            String(plan.fleetsMoving),
            String(plan.vmsMoving),
            String(plan.waves),
            String(plan.fleetsSkipped),
            humanDuration(plan.estimatedSeconds)
          ])
        ))
      }).pipe(Effect.provide(PlannerLocalLive))
    )
).pipe(Command.withDescription("List saved plans, newest first"))

const show = Command.make(
  "show",
  {
    id: Args.text({ name: "id" }).pipe(Args.withDescription("a saved plan's id")),
    format: formatOption,
    out: outOption
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const id = yield* decodeId(PlanId, options.id, "plan id", "fleet plans list")
        const saved = yield* (yield* PlanService).get(id)
        if (options.format === "json") {
          return yield* emit(`${JSON.stringify(Schema.encodeSync(SavedPlanSchema)(saved), null, 2)}\n`, options.out)
        }
        if (Option.isNone(options.out)) yield* Console.error(`plan ${saved.id}, saved by ${saved.createdBy} at ${saved.createdAt.toISOString()}`)
        yield* emit(renderPlan(saved.plan, options.format), options.out)
      }).pipe(Effect.provide(PlannerLocalLive))
    )
).pipe(Command.withDescription("Show a saved plan's report (--format json: the saved plan with its recycle plan and hashes)"))

const verify = Command.make(
  "verify",
  { id: Args.text({ name: "id" }).pipe(Args.withDescription("a saved plan's id")) },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        const id = yield* decodeId(PlanId, options.id, "plan id", "fleet plans list")
        const fresh = yield* (yield* PlanService).verify(id)
        yield* Console.log(`plan ${id} is current: the inventory (digest ${fresh.inventoryDigest.slice(0, 12)}) and the policies still give it`)
      }).pipe(Effect.provide(PlannerLocalLive))
    )
).pipe(
  Command.withDescription(
    "Check that a saved plan still matches the inventory and the deprecation policies, as the executor does before a run " +
      "(exit status 1, with the reason, when it does not)"
  )
)

export const plansCommand = commandGroup("plans", "Saved plans: list them, show their reports, check they are still current", [list, show, verify])
