import { Duration, Effect } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { repoRoot } from "./Paths.js"
import { testBundlePath } from "./TestBundle.js"

export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** A `fleet …` child process still running: what it has printed so far, and its end. */
export interface RunningCli {
  /** The first match of `pattern` in stderr, as soon as it is there; fails if the process ends (or 30 s pass) without it. */
  readonly stderrMatching: (pattern: RegExp) => Effect.Effect<RegExpExecArray, Error>
  /** Ctrl-C. */
  readonly interrupt: Effect.Effect<void>
  readonly exited: Effect.Effect<Ran>
}

/**
 * `fleet …` as a child process (the sources as bundled for this test run: ./TestBundle.ts), with `env`
 * on top of this process's environment less its database settings (a test names the database,
 * or the fleet server, the command is to use). Killed at the end of the scope if still running.
 */
export const startCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.gen(function* () {
    const { DATABASE_URL: _database, TEST_DATABASE_URL: _test, ...base } = process.env
    const child: ChildProcessWithoutNullStreams = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [testBundlePath, ...args], { cwd: repoRoot, env: { ...base, ...env } })),
      (child) => Effect.sync(() => child.kill())
    )
    const output = { stdout: "", stderr: "" }
    child.stdout.on("data", (chunk: Buffer) => (output.stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (output.stderr += chunk.toString("utf8")))
    const closed = new Promise<Ran>((resolve) => child.on("close", (code) => resolve({ code, ...output })))
    const stderrMatching = (pattern: RegExp) =>
      Effect.async<RegExpExecArray, Error>((resume) => {
        // Registered after the collector above, so each chunk is in output.stderr when this runs.
        const check = () => {
          const match = pattern.exec(output.stderr)
          if (match !== null) resume(Effect.succeed(match))
        }
        const ended = () => resume(Effect.fail(new Error(`fleet ${args.join(" ")} ended without printing ${pattern} on stderr:\n${output.stderr}`)))
        child.stderr.on("data", check)
        child.once("close", ended)
        check()
        return Effect.sync(() => {
          child.stderr.off("data", check)
          child.off("close", ended)
        })
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(30),
          onTimeout: () => new Error(`fleet ${args.join(" ")} did not print ${pattern} on stderr within 30 s:\n${output.stderr}`)
        })
      )
    return {
      stderrMatching,
      interrupt: Effect.sync(() => void child.kill("SIGINT")),
      exited: Effect.promise(() => closed)
    } satisfies RunningCli
  })

/** `fleet …` to its end (killed if interrupted before). */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.scoped(Effect.flatMap(startCli(args, env), (cli) => cli.exited))
