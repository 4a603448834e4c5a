import { NodeRuntime } from "@effect/platform-node"
import { runCli } from "./cli/Cli.js"

NodeRuntime.runMain(runCli(process.argv), { disablePrettyLogger: true })
