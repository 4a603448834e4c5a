import { NodeContext } from "@effect/platform-node"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { fleetHelp, parseMistake } from "../../src/cli/Cli.js"
import { version } from "../../src/common/Version.js"
import { helpFor } from "../../src/cli/Help.js"

const width = 80
const ask = (...args: ReadonlyArray<string>) => helpFor(fleetHelp, args, { width, version })
const helpText = (...args: ReadonlyArray<string>) => {
  const answer = ask(...args)
  if (answer?._tag !== "Help") throw new Error(`fleet ${args.join(" ")}: expected help, got ${JSON.stringify(answer)}`)
  return answer.text
}
/** The names in the first column of a COMMANDS section. */
const commandNames = (text: string) => [...text.matchAll(/^ {2}(\S+) {2,}/gm)].map((match) => match[1])

describe("fleet's help", () => {
  it("lists every command in order, each group with its commands, within the width", () => {
    const text = helpText("--help")
    expect(text).toBe(helpText())
    expect(text.split("\n")[0]).toBe(`fleet ${version}: Keeps VM fleets off deprecated operating systems`)
    expect(commandNames(text)).toEqual(["serve", "migrate", "proctor-sim", "vms", "tokens", "plan", "plans", "apply", "runs", "demo"])
    expect(text.replace(/\s+/g, " ")).toContain(" vms Create, show, list, retry and decommission VMs through a running fleet [create, get, list, retry, decommission] tokens ")
    expect(Math.max(...text.split("\n").map((line) => line.length))).toBeLessThanOrEqual(width)
  })

  it("lists a group's commands in order with their descriptions, asked with --help, -h or nothing", () => {
    const text = helpText("vms", "--help")
    expect(helpText("vms", "-h")).toBe(text)
    expect(helpText("vms")).toBe(text)
    expect(text).toMatch(/^USAGE\n {2}fleet vms <command> \[options\]$/m)
    expect(commandNames(text)).toEqual(["create", "get", "list", "retry", "decommission"])
    expect(text).toMatch(/^ {2}get {11}Show a VM \(with its history\) or a VM request$/m)
    // In the order the group declares them, not by name.
    expect(commandNames(helpText("runs"))).toEqual(["list", "show", "watch", "steps", "plan", "pause", "resume", "cancel"])
    expect(commandNames(helpText("demo"))).toEqual(["seed", "clear"])
  })

  it("shows a command's whole command line and one line per option, wherever --help is", () => {
    const text = helpText("vms", "create", "-a", "payments-api", "--help")
    expect(text).toMatch(/^USAGE\n {2}fleet vms create \[--url text\]/m)
    expect(text).toMatch(/^ {2}-a, --application text {3}application name, e\.g\. payments-api$/m)
    expect(text).toMatch(/^ {2}-n, --count integer {6}how many VMs \(optional\)$/m)
    expect(text).not.toContain("A user-defined piece of text")
    expect(text).not.toContain("--completions")
    const watch = helpText("runs", "watch", "-h")
    expect(watch).toMatch(/^ARGUMENTS\n {2}<run-id> {2}the run's id$/m)
    expect(helpText("plan", "--help")).toMatch(/^USAGE\n {2}fleet plan \[--dry-run\]/m)
  })

  it("finds the command wherever the help flag and --log-level are, and takes `fleet help …`", () => {
    expect(helpText("--log-level", "debug", "vms", "--help")).toBe(helpText("vms"))
    expect(helpText("-h", "vms")).toBe(helpText("vms"))
    expect(helpText("help")).toBe(helpText())
    expect(helpText("help", "vms", "create")).toBe(helpText("vms", "create", "--help"))
    expect(helpText("vms", "create", "--log-level=debug", "-h")).toBe(helpText("vms", "create", "--help"))
    // After `--`, a --help is the command's argument.
    expect(ask("vms", "create", "--", "--help")).toBeUndefined()
    expect(ask("--log-level", "debug", "vms", "craete")?._tag).toBe("UnknownCommand")
  })

  it("marks an option optional only when it takes a value, and a repeated one repeatable", () => {
    const text = helpText("vms", "create", "--help")
    expect(text.replace(/\s+/g, " ")).toContain(" [--metadata text...] [--wait]")
    expect(text.replace(/\s+/g, " ")).toContain(
      " --metadata text... a key=value pair of the VMs' metadata (--metadata team=payments --metadata tier=web) (optional, repeatable) --wait "
    )
    expect(text).toMatch(/^ {2}--url text {15}fleet's base URL \(env FLEET_URL\) \(optional\)$/m)
    expect(text).toMatch(/^ {2}--json {19}print the answer as JSON instead of text for people$/m)
  })

  it("says what every argument and option of every command is for, in its own words", () => {
    const leaves = commandNames(helpText()).flatMap((name) => {
      const text = helpText(name!, "--help")
      return text.includes("\nCOMMANDS\n") ? commandNames(text).map((sub) => [name, sub!]) : [[name!]]
    })
    expect(leaves.length).toBeGreaterThan(25)
    // @effect/cli's words for an option nobody described: its value's type, and whether it is optional.
    const stock = /^(A user-defined piece of text|An integer|A floating point number|A true or false value|One of the following|This setting is optional|A file|A date)/
    for (const leaf of leaves) {
      const text = helpText(...leaf, "--help")
      const definitions = [...text.matchAll(/^ {2}(-[^ ]+(?: [^ ]+)*|<[^>]+>)(?: {2,}(.*))?$/gm)]
      for (const [line, term, description] of definitions) {
        // A term too long for its column has its description on the next line.
        const own = description ?? text.split("\n")[text.split("\n").indexOf(line) + 1]!.trim()
        expect({ command: leaf.join(" "), term, description: own }).toEqual({ command: leaf.join(" "), term, description: expect.not.stringMatching(stock) })
        expect(own.length, `${leaf.join(" ")} ${term}`).toBeGreaterThan(5)
      }
    }
  })

  it("names a group's commands, and the closest, for one it does not have", () => {
    expect(ask("vms", "craete")).toEqual({
      _tag: "UnknownCommand",
      message: "fleet vms has no command 'craete'; did you mean 'create'? Its commands: create, get, list, retry, decommission (fleet vms --help)."
    })
    expect(ask("deploy", "--help")).toEqual({
      _tag: "UnknownCommand",
      message: "fleet has no command 'deploy'. Its commands: serve, migrate, proctor-sim, vms, tokens, plan, plans, apply, runs, demo (fleet --help)."
    })
  })

  it("leaves every other command line to the commands", () => {
    expect(ask("vms", "list", "--json")).toBeUndefined()
    expect(ask("--version")).toBeUndefined()
    expect(ask("--log-level", "debug", "vms", "list")).toBeUndefined()
    expect(ask("vms", "--json")).toBeUndefined()
  })
})

/** What fleet says of a command line, as @effect/cli parses it for real. */
const mistake = (...args: ReadonlyArray<string>) => Effect.runPromise(parseMistake(args).pipe(Effect.map(Option.getOrUndefined), Effect.provide(NodeContext.layer)))

describe("a command line fleet cannot parse", () => {
  it("names the command, the option, what it was given and what it expects, and where the help is", async () => {
    const states = "pending, submitting, provisioning, ready, failed, timed_out, decommissioning, decommissioned"
    expect(await mistake("vms", "list", "--state", "bogus")).toBe(
      `error: fleet vms list: --state bogus: expected one of ${states}\n(fleet vms list --help: its arguments and options)`
    )
    expect(await mistake("vms", "list", "--state=bogus")).toBe(await mistake("vms", "list", "--state", "bogus"))
    expect(await mistake("runs", "list", "--limit", "abc")).toMatch(/^error: fleet runs list: --limit abc: expected a whole number\n/)
    expect(await mistake("plan", "x.yaml", "-f", "pdf")).toMatch(/^error: fleet plan: -f pdf: expected one of text, markdown, json, html\n/)
    // Checks of fleet's own keep their words.
    expect(await mistake("vms", "list", "--limit", "0")).toMatch(/^error: fleet vms list: --limit 0: expected an integer from 1 to 500\n/)
  })

  it("says which options are missing, an option it does not know (and the close ones), an argument too many or missing", async () => {
    expect(await mistake("vms", "create", "-a", "payments-api", "-e", "production")).toBe([
      "error: fleet vms create: 3 problems",
      "  - missing option --stack",
      "  - missing option --os",
      "  - missing option --machine-type",
      "(fleet vms create --help: its arguments and options)"
    ].join("\n"))
    expect(await mistake("vms", "list", "--stat", "ready")).toMatch(/^error: fleet vms list: unknown option --stat; did you mean '--stack' or '--state'\?\n/)
    expect(await mistake("vms", "get", "a", "b")).toMatch(/^error: fleet vms get: unexpected argument 'b'\n/)
    expect(await mistake("runs", "watch")).toMatch(/^error: fleet runs watch: missing argument <run-id>\n/)
  })

  it("tells an option given twice or without its value from an unknown one, and a word after -- from an option", async () => {
    expect(await mistake("vms", "list", "--application", "a", "--application=b")).toMatch(/^error: fleet vms list: --application is given 2 times; it takes one value\n/)
    expect(await mistake("vms", "list", "--state")).toMatch(/^error: fleet vms list: --state needs a value \(pending \| submitting \| .*\)\n/)
    expect(await mistake("vms", "list", "--", "--json")).toMatch(/^error: fleet vms list: unexpected argument '--json'\n/)
    expect(await mistake("vms", "--bogus")).toBe(
      "error: fleet vms: unknown option --bogus; expected one of its commands: create, get, list, retry, decommission\n(fleet vms --help: its arguments and options)"
    )
    // --log-level, which every command takes, anywhere: the mistake is still found, once.
    expect(await mistake("--log-level", "debug", "vms", "list", "--limit", "x")).toMatch(/^error: fleet vms list: --limit x: expected a whole number\n/)
    expect(await mistake("vms", "list", "--limit", "x", "--log-level=debug")).toBe(await mistake("vms", "list", "--limit", "x"))
  })

  it("has nothing to say of a command line that parses", async () => {
    expect(await mistake("vms", "list", "--state", "ready", "--limit", "5")).toBeUndefined()
    expect(await mistake("--version")).toBeUndefined()
  })
})
