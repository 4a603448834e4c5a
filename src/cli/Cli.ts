import { CliConfig, Command, CommandDescriptor, HelpDoc, ValidationError } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Console, Effect, Layer, Option } from "effect"
import { version } from "../common/Version.js"
import { DatabaseLive } from "../db/Database.js"
import { migrate } from "../db/Migrations.js"
import { ControllerLive } from "../main.js"
import { proctorSimCommand } from "../proctor/SimulatorCli.js"
import { explainStart } from "./Connection.js"
import { demoCommand } from "./DemoCommands.js"
import { commandGroup, explainParseError, helpFor, topicOf } from "./Help.js"
import { CliLoggerLive } from "./LocalDatabase.js"
import { planCommand, plansCommand } from "./PlanCommands.js"
import { colourWhereWanted } from "./PlainConsole.js"
import { tokensCommand } from "./TokenCommands.js"
import { vmsCommand } from "./VmsCommands.js"
import { applyCommand, runsCommand } from "./RunCommands.js"

const serve = Command.make("serve", {}, () => explainStart(Layer.launch(ControllerLive))).pipe(
  Command.withDescription(
    "Run the controller: the HTTP API and the reconciler. Uses DATABASE_URL and PROCTOR_URL; without them " +
      "(and FLEET_MODE not production) an embedded database under FLEET_DATA_DIR and the bundled proctor simulator."
  )
)

const migrateCommand = Command.make("migrate", {}, () =>
  explainStart(
    Effect.gen(function* () {
      const applied = yield* migrate
      yield* Console.log(applied.length === 0 ? "The database is up to date." : `Applied ${applied.map(([id, name]) => `${id}_${name}`).join(", ")}`)
    }).pipe(Effect.provide(DatabaseLive.pipe(Layer.provideMerge(CliLoggerLive))))
  )
).pipe(Command.withDescription("Apply the SQL migrations in migrations/ to DATABASE_URL (or the embedded database)"))

const commands = [
  serve,
  migrateCommand,
  proctorSimCommand.pipe(Command.transformHandler(explainStart)),
  vmsCommand,
  tokensCommand,
  planCommand,
  plansCommand,
  applyCommand,
  runsCommand,
  demoCommand
] as const

export const fleetCommand = commandGroup("fleet", "Keeps VM fleets off deprecated operating systems", commands)

/** Every command's help, each group's commands in the order they are declared. */
export const fleetHelp = topicOf(fleetCommand.descriptor)

/** The level `--log-level <level>` (or `--log-level=<level>`) gives before `--`, and the command line without it. */
const splitLogLevel = (args: ReadonlyArray<string>): { readonly level: string | undefined; readonly rest: ReadonlyArray<string> } => {
  const rest: Array<string> = []
  let level: string | undefined
  for (let at = 0; at < args.length; at += 1) {
    const arg = args[at]!
    if (arg === "--") return { level, rest: [...rest, ...args.slice(at)] }
    if (arg === "--log-level") level = args[(at += 1)]
    else if (arg.startsWith("--log-level=")) level = arg.slice("--log-level=".length)
    else rest.push(arg)
  }
  return { level, rest }
}

/** @effect/cli's names of the levels, as LOG_LEVEL (Effect's labels) spells them. */
const logLevelNames: Readonly<Record<string, string>> = { warning: "WARN", none: "OFF" }

/**
 * --log-level as LOG_LEVEL, which the loggers read: @effect/cli sets the level around the command,
 * and each logger's own minimum (from LOG_LEVEL, or its default) would otherwise override it.
 */
const withLogLevelOption = (args: ReadonlyArray<string>) => <A, E, R>(effect: Effect.Effect<A, E, R>) => {
  const { level } = splitLogLevel(args)
  if (level === undefined) return effect
  const given = ConfigProvider.fromMap(new Map([["LOG_LEVEL", logLevelNames[level.toLowerCase()] ?? level.toUpperCase()]]))
  return Effect.withConfigProvider(effect, ConfigProvider.orElse(given, () => ConfigProvider.fromEnv()))
}

/**
 * What is wrong with a command line @effect/cli cannot parse, explained fleet's way (./Help.ts):
 * which command, which option, what it expects, where the help is. None for one it can.
 */
export const parseMistake = (args: ReadonlyArray<string>) =>
  // Without --log-level, as @effect/cli parses the command line again once it has taken it.
  CommandDescriptor.parse(fleetCommand.descriptor, ["fleet", ...splitLogLevel(args).rest], CliConfig.defaultConfig).pipe(
    Effect.flatMap((directive) =>
      directive._tag === "UserDefined" && directive.leftover.length > 0
        ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(`Received unknown argument: '${directive.leftover[0]}'`)))
        : Effect.void
    ),
    Effect.match({ onFailure: (error) => Option.some(explainParseError(fleetHelp, args, error.error)), onSuccess: () => Option.none<string>() })
  )

/**
 * A command line @effect/cli cannot parse is explained before @effect/cli would print its own words
 * for it, and failed as @effect/cli fails it, so that it is not logged again.
 */
const refuseMistakes = (args: ReadonlyArray<string>) =>
  Effect.flatMap(parseMistake(args), Option.match({
    onNone: () => Effect.void,
    onSome: (explained) => Effect.zipRight(Console.error(explained), Effect.fail(ValidationError.invalidValue(HelpDoc.p(explained))))
  }))

/**
 * `argv` as a process receives it (node, the script, then the arguments). A request for help, or
 * a command that does not exist, is answered with fleet's own help (./Help.ts); the rest is
 * @effect/cli's to parse and run.
 */
export const runCli = (argv: ReadonlyArray<string>) =>
  Console.consoleWith((console) => {
    const args = argv.slice(2)
    const help = helpFor(fleetHelp, args, { width: Math.min(Math.max(process.stdout.columns ?? 100, 60), 120), version })
    const run = help === undefined
      ? Effect.zipRight(refuseMistakes(args), Command.run(fleetCommand, { name: "fleet", version })(argv))
      : help._tag === "Help"
      ? Console.log(help.text)
      // Failed as @effect/cli fails a command line it cannot parse: explained here, not logged again.
      : Effect.zipRight(Console.error(`error: ${help.message}`), Effect.fail(ValidationError.commandMismatch(HelpDoc.p(help.message))))
    return run.pipe(withLogLevelOption(args), Console.withConsole(colourWhereWanted(console)))
  }).pipe(Effect.provide(NodeContext.layer))
