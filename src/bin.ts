import { ValidationError } from "@effect/cli"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Option } from "effect"
import { runCli } from "./cli/Cli.js"

// A mistyped command or option has been explained by @effect/cli already (with the help to use):
// it is not logged again as an error. Other failures are, as runMain would.
const program = runCli(process.argv).pipe(
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause) || Option.exists(Cause.failureOption(cause), ValidationError.isValidationError)
      ? Effect.void
      : Effect.logError(cause)
  )
)

// The servers stop on SIGINT or SIGTERM as asked: exit status 0. Any other command stopped that way
// did not finish what it was asked to do (a wait, a watch): 130, as a shell reports an interrupted
// program, so that a script can tell. The command is the first argument that is not an option.
const serving = ["serve", "proctor-sim"].includes(process.argv.slice(2).find((arg) => !arg.startsWith("-")) ?? "")

NodeRuntime.runMain(program, {
  disablePrettyLogger: true,
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    onExit(
      Exit.isSuccess(exit)
        ? Number(process.exitCode ?? 0)
        : Cause.isInterruptedOnly(exit.cause) ? (serving ? 0 : 130) : 1
    )
})
