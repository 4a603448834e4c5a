import { ValidationError } from "@effect/cli"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Option } from "effect"
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

NodeRuntime.runMain(program, { disablePrettyLogger: true, disableErrorReporting: true })
