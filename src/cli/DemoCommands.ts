/**
 * `fleet demo seed | clear`: a realistic synthetic inventory in the database (DATABASE_URL, or the
 * embedded one), so that the example plans in plans/ have fleets to move. Development only.
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect } from "effect"
import { Catalog } from "../catalog/Catalog.js"
import { Conflict } from "../common/Errors.js"
import { ModeConfig } from "../config/Mode.js"
import { clearDemo, seedDemo } from "../demo/Seed.js"
import { defaultAppCount } from "../demo/Synthetic.js"
import { explainFailure } from "./Connection.js"
import { PlannerLocalLive } from "./PlanCommands.js"
import { commandGroup } from "./Help.js"

const refuseInProduction = Effect.gen(function* () {
  if ((yield* ModeConfig) === "production") {
    return yield* Effect.fail(new Conflict({ message: "demo data is not written in production mode (FLEET_MODE=production)" }))
  }
})

const count = (value: number) => value.toLocaleString("en-US")

const seed = Command.make(
  "seed",
  {
    apps: Options.integer("apps").pipe(
      Options.withDefault(defaultAppCount),
      Options.mapEffect((apps) =>
        apps >= 1 && apps <= 10_000
          ? Effect.succeed(apps)
          : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--apps ${apps}: expected a number of applications from 1 to 10000`)))
      ),
      Options.withDescription(`how many applications, each in one to three environments with one to twenty VMs per fleet (default ${defaultAppCount})`)
    ),
    seed: Options.text("seed").pipe(
      Options.withDefault("42"),
      Options.withDescription("seed of the generator, a number or a word: the same seed and --apps give the same inventory (default 42)")
    ),
    reset: Options.boolean("reset").pipe(Options.withDescription("replace the demo VMs there are (without it, seeding twice is refused)"))
  },
  (options) =>
    explainFailure(
      Effect.gen(function* () {
        yield* refuseInProduction
        const seedValue = /^\d{1,9}$/.test(options.seed) ? Number(options.seed) : options.seed
        const catalog = yield* Catalog
        const started = performance.now()
        const result = yield* seedDemo(catalog, {
          apps: options.apps,
          seed: seedValue,
          reset: options.reset,
          // Said once seeding goes ahead, so that a refusal (demo VMs already there) is not preceded by it.
          starting: Console.error(`Generating ${count(options.apps)} applications (seed ${options.seed})…`),
          progress: (written, total) => Console.error(`  wrote ${count(written)} of ${count(total)} VMs`)
        })
        const seconds = ((performance.now() - started) / 1000).toFixed(1)
        if (result.removed > 0) yield* Console.log(`Removed ${count(result.removed)} earlier demo VMs.`)
        yield* Console.log(
          `Seeded ${count(result.vms)} demo VMs in ${seconds}s: ${count(result.applications)} applications, ` +
            `${count(result.fleets)} fleets, ${count(result.live)} live VMs ` +
            `(${Object.entries(result.byState).sort(([a], [b]) => a.localeCompare(b)).map(([state, vms]) => `${count(vms)} ${state}`).join(", ")}).`
        )
        yield* Console.log("Next: npm run fleet -- plan plans/retire-deprecated.yaml --dry-run   (see plans/README.md for the other examples)")
      }).pipe(Effect.provide(PlannerLocalLive))
    )
).pipe(
  Command.withDescription(
    "Load a synthetic inventory (hundreds of applications over every environment and stack, a real-looking mix of OS " +
      "versions with deprecated ones, a few failed VMs) into the database as demo VMs (created_by demo-seed). " +
      "Refuses when demo VMs exist, unless --reset. Uses DATABASE_URL or the embedded database; not in production mode."
  )
)

const clear = Command.make("clear", {}, () =>
  explainFailure(
    Effect.gen(function* () {
      yield* refuseInProduction
      const removed = yield* clearDemo
      yield* Console.log(removed === 0 ? "There were no demo VMs." : `Removed ${count(removed)} demo VMs and their events.`)
    }).pipe(Effect.provide(PlannerLocalLive))
  )).pipe(Command.withDescription("Remove the demo VMs `fleet demo seed` wrote (and their events)"))

export const demoCommand = commandGroup("demo", "Demo data for trying fleet out: a synthetic inventory the example plans in plans/ work on", [seed, clear])
