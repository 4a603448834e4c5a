/**
 * fleet's own help for its command groups (`fleet --help`, `fleet vms --help`), for its commands'
 * help lines (`fleet vms create --help`), and for a mistyped command name.
 *
 * @effect/cli's help for a group puts its commands last, after fifty lines of built-in options,
 * each command with its full usage padded to the widest (some 330 columns), and its help for a
 * command one level down shows the usage without the group (`$ create …`). A mistyped command in a
 * group is reported against the top level ("Invalid subcommand for fleet"). The text here is built
 * from the same commands, so names and descriptions are written once, in the commands.
 */
import { AutoCorrect, CliConfig, Command, CommandDescriptor, HelpDoc, Usage } from "@effect/cli"
import * as Span from "@effect/cli/HelpDoc/Span"
import { HashMap, HashSet, Order, Array as Arr } from "effect"

/** A command or a group of commands, as its help shows it. */
export interface HelpTopic {
  readonly name: string
  /** Its description, as one line of text. */
  readonly summary: string
  readonly descriptor: CommandDescriptor.Command<unknown>
  /** A group's commands, by name; none for a command. */
  readonly subcommands: ReadonlyArray<HelpTopic>
}

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
  }
}

/** The document's blocks in order, its sequences flattened. */
const blocks = (doc: HelpDoc.HelpDoc): ReadonlyArray<HelpDoc.HelpDoc> =>
  HelpDoc.isSequence(doc) ? [...blocks(doc.left), ...blocks(doc.right)] : HelpDoc.isEmpty(doc) ? [] : [doc]

/** The blocks under `header` in a command's help, up to the next header. */
const section = (doc: HelpDoc.HelpDoc, header: string): ReadonlyArray<HelpDoc.HelpDoc> => {
  const all = blocks(doc)
  const start = all.findIndex((block) => HelpDoc.isHeader(block) && spanText(block.value) === header)
  if (start < 0) return []
  const after = all.slice(start + 1)
  const end = after.findIndex(HelpDoc.isHeader)
  return end < 0 ? after : after.slice(0, end)
}

const paragraphs = (parts: ReadonlyArray<HelpDoc.HelpDoc>): ReadonlyArray<string> =>
  parts.flatMap((part) => (HelpDoc.isParagraph(part) ? [spanText(part.value).trim()] : []))

/** The paragraphs under the DESCRIPTION header of a command's help, as one line. */
const descriptionOf = (doc: HelpDoc.HelpDoc): string => paragraphs(section(doc, "DESCRIPTION")).join(" ")

const nameOf = (descriptor: CommandDescriptor.Command<unknown>): string => Arr.headNonEmpty(Arr.fromIterable(CommandDescriptor.getNames(descriptor)) as Arr.NonEmptyArray<string>)

/** Each group's commands in the order `commandGroup` was given them. */
const declaredOrder = new WeakMap<object, ReadonlyArray<CommandDescriptor.Command<unknown>>>()

/**
 * A group of commands (`fleet`, `fleet vms`): @effect/cli's, with the order of its commands kept
 * for the help, which @effect/cli does not give back.
 */
export const commandGroup = <const Name extends string, const Subcommands extends Parameters<typeof Command.withSubcommands>[1]>(
  name: Name,
  description: string,
  subcommands: Subcommands
) => {
  const group = Command.make(name).pipe(Command.withDescription(description), Command.withSubcommands(subcommands))
  declaredOrder.set(group.descriptor, subcommands.map((subcommand) => subcommand.descriptor))
  return group
}

/**
 * The topic of a command or a group, a group's commands in their declared order (by name for a
 * group not made with `commandGroup`; a command that is not a group is its own only "subcommand"
 * for @effect/cli).
 */
export const topicOf = (descriptor: CommandDescriptor.Command<unknown>): HelpTopic => {
  const name = nameOf(descriptor)
  const children = declaredOrder.get(descriptor) ??
    Arr.sort(
      Arr.filter(HashMap.values(CommandDescriptor.getSubcommands(descriptor)), (child) => !HashSet.has(CommandDescriptor.getNames(child), name)),
      Order.mapInput(Order.string, nameOf)
    )
  return {
    name,
    summary: descriptionOf(CommandDescriptor.getHelp(descriptor, CliConfig.defaultConfig)),
    descriptor,
    subcommands: children.map(topicOf)
  }
}

/** `text` in lines of at most `width` characters (a longer word has a line to itself). */
const wrap = (text: string, width: number): ReadonlyArray<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((word) => word !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  if (line !== "") lines.push(line)
  return lines
}

const groupHelp = (path: ReadonlyArray<string>, topic: HelpTopic, width: number, version: string): string => {
  const command = path.join(" ")
  const nameWidth = Math.max(...topic.subcommands.map((sub) => sub.name.length))
  const textWidth = Math.max(30, width - nameWidth - 4)
  const entries = topic.subcommands.flatMap((sub) => {
    const text = sub.subcommands.length > 0 ? `${sub.summary} [${sub.subcommands.map((child) => child.name).join(", ")}]` : sub.summary
    return wrap(text, textWidth).map((line, index) => `  ${(index === 0 ? sub.name : "").padEnd(nameWidth)}  ${line}`)
  })
  return [
    ...wrap(path.length === 1 ? `${command} ${version}: ${topic.summary}` : `${command}: ${topic.summary}`, width),
    "",
    "USAGE",
    `  ${command} <command> [options]`,
    "",
    "COMMANDS",
    ...entries,
    "",
    ...wrap(
      `A command's arguments and options: ${command} <command> --help.` +
        (path.length === 1 ? ` Every command also takes --log-level <level>; ${command} --version prints the version.` : ""),
      width
    )
  ].join("\n")
}

/** The definitions (term, its paragraphs) of the description lists under `header` in a command's help. */
const definitionsUnder = (doc: HelpDoc.HelpDoc, header: string): ReadonlyArray<readonly [string, ReadonlyArray<string>]> =>
  section(doc, header).flatMap((block) =>
    HelpDoc.isDescriptionList(block)
      ? block.definitions.map(([term, body]) => [spanText(term).replace(/^\((.*)\)$/, "$1"), paragraphs(blocks(body))] as const)
      : []
  )

const optional = "This setting is optional."

/**
 * One line for an argument or option: its description as the command gives it, and whether it is
 * optional. @effect/cli's paragraphs around it (the value's type in words, "can be set from
 * environment variables", how a property argument is written) say what the term already shows.
 */
const definitionLine = ([term, paragraphs]: readonly [string, ReadonlyArray<string>]): string => {
  const described = paragraphs.filter((paragraph) => paragraph !== optional)
  const own = described.length > 1 ? described[1]! : described[0] ?? ""
  // A flag without a value (`--json`, `--wait`) is optional by nature.
  const takesValue = / [^-]/.test(term.replace(/^(-\w, )/, ""))
  // A repeated option (`--token text...`) may be given any number of times, none included.
  if (term.endsWith("...")) return `${own} (optional, repeatable)`
  return takesValue && paragraphs.includes(optional) ? `${own} (optional)` : own
}

const listing = (definitions: ReadonlyArray<readonly [string, ReadonlyArray<string>]>, width: number): ReadonlyArray<string> => {
  const termWidth = Math.min(28, Math.max(...definitions.map(([term]) => term.length)))
  const textWidth = Math.max(30, width - termWidth - 4)
  return definitions.flatMap((definition) => {
    const [term] = definition
    const lines = wrap(definitionLine(definition), textWidth)
    const pad = " ".repeat(termWidth + 4)
    return term.length > termWidth
      ? [`  ${term}`, ...lines.map((line) => pad + line)]
      : lines.map((line, index) => (index === 0 ? `  ${term.padEnd(termWidth)}  ${line}` : pad + line))
  })
}

const commandHelp = (path: ReadonlyArray<string>, topic: HelpTopic, width: number): string => {
  const help = CommandDescriptor.getHelp(topic.descriptor, CliConfig.make({ showBuiltIns: false }))
  const group = path.slice(0, -1).join(" ")
  // A repeated option may be left out: bracketed as the other optional ones are (@effect/cli shows `--token text...` bare).
  const usage = `${group} ${spanText(HelpDoc.getSpan(Usage.getHelp(CommandDescriptor.getUsage(topic.descriptor))))}`
    .replace(/(^| )(--[\w-]+ \w+\.\.\.)(?= |$)/g, "$1[$2]")
  const section = (header: string, name: string) => {
    const definitions = definitionsUnder(help, header)
    return definitions.length === 0 ? [] : ["", name, ...listing(definitions, width)]
  }
  return [
    ...wrap(`${path.join(" ")}: ${topic.summary}`, width),
    "",
    "USAGE",
    ...wrap(usage, width - 4).map((line, index) => (index === 0 ? `  ${line}` : `      ${line}`)),
    ...section("ARGUMENTS", "ARGUMENTS"),
    ...section("OPTIONS", "OPTIONS"),
    "",
    ...wrap(`Every command also takes --log-level <level>. The other commands: ${group} --help.`, width)
  ].join("\n")
}

/** What `fleet <args>` asks of the help: text to print (exit 0), or a mistake to report (exit 1). */
export type HelpAnswer =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "UnknownCommand"; readonly message: string }

const isHelpFlag = (arg: string) => arg === "--help" || arg === "-h"

/**
 * Where a command line leads: the command (or group) it names, and whether it asks for help; or,
 * `GroupOption`, to an option given to a group (--version, --completions …, or a mistake), which
 * is @effect/cli's to answer.
 */
interface Resolved {
  readonly _tag: "Resolved" | "GroupOption"
  readonly path: ReadonlyArray<string>
  readonly topic: HelpTopic
  readonly wantsHelp: boolean
}

/**
 * Walks `args` (the command line after the program) down the command tree, past --help, -h,
 * `help` and --log-level wherever they are, up to `--`. A group's command that does not exist is an
 * UnknownCommand.
 */
const resolve = (root: HelpTopic, args: ReadonlyArray<string>): Resolved | Extract<HelpAnswer, { _tag: "UnknownCommand" }> => {
  const path = [root.name]
  let topic = root
  let wantsHelp = false
  for (let at = 0; at < args.length; at += 1) {
    const arg = args[at]!
    // What follows `--` is the command's, whatever it looks like.
    if (arg === "--") break
    if (isHelpFlag(arg)) {
      wantsHelp = true
      continue
    }
    // The one built-in option fleet's help mentions, taken before or after the command's name.
    if (arg === "--log-level") {
      at += 1
      continue
    }
    if (arg.startsWith("--log-level=")) continue
    if (topic.subcommands.length === 0) continue
    if (arg.startsWith("-")) return { _tag: "GroupOption", path, topic, wantsHelp }
    // `fleet help [group]`, as many tools have it.
    if (arg === "help" && !topic.subcommands.some((sub) => sub.name === "help")) {
      wantsHelp = true
      continue
    }
    const next = topic.subcommands.find((sub) => sub.name === arg)
    if (next === undefined) {
      const names = topic.subcommands.map((sub) => sub.name)
      return {
        _tag: "UnknownCommand",
        message: `${path.join(" ")} has no command '${arg}'${didYouMean(arg, names) || "."}` + ` Its commands: ${names.join(", ")} (${path.join(" ")} --help).`
      }
    }
    topic = next
    path.push(next.name)
  }
  return { _tag: "Resolved", path, topic, wantsHelp }
}

/** "; did you mean 'x'?" when some of `names` is close to `word`, else nothing. */
const didYouMean = (word: string, names: ReadonlyArray<string>): string => {
  const close = names.filter((name) => AutoCorrect.levensteinDistance(word, name, CliConfig.defaultConfig) <= 2)
  return close.length > 0 ? `; did you mean ${close.map((name) => `'${name}'`).join(" or ")}?` : ""
}

/**
 * The help `args` (the command line after the program) ask for: a group's when no command of it
 * is named (with or without --help, -h or `help`); a command's with --help or -h anywhere before
 * `--`; a group's command that does not exist. Anything else is for @effect/cli to parse
 * (undefined).
 */
export const helpFor = (
  root: HelpTopic,
  args: ReadonlyArray<string>,
  options: { readonly width: number; readonly version: string }
): HelpAnswer | undefined => {
  const resolved = resolve(root, args)
  if (resolved._tag === "UnknownCommand") return resolved
  if (resolved._tag === "GroupOption") return undefined
  const { path, topic, wantsHelp } = resolved
  // A group named without a command of it: its help, asked for or not.
  if (topic.subcommands.length > 0) return { _tag: "Help", text: groupHelp(path, topic, options.width, options.version) }
  return wantsHelp ? { _tag: "Help", text: commandHelp(path, topic, options.width) } : undefined
}

/** A command's options, each by its names (`-a`, `--application`) and what its value is written as (`text`, `a | b`). */
const optionsOf = (topic: HelpTopic) =>
  definitionsUnder(CommandDescriptor.getHelp(topic.descriptor, CliConfig.make({ showBuiltIns: false })), "OPTIONS").map(([term]) => {
    const words = term.split(" ")
    const names = words.filter((word) => word.startsWith("-")).map((word) => word.replace(/,$/, ""))
    return { names, value: words.filter((word) => !word.startsWith("-")).join(" ") }
  })

/** Each option on the command line with its value: the word after it (`--limit abc`) or after its `=`. */
const givenValues = (args: ReadonlyArray<string>) =>
  args.flatMap((arg, at) => {
    if (!arg.startsWith("-")) return []
    const equals = arg.indexOf("=")
    if (equals > 0) return [{ name: arg.slice(0, equals), value: arg.slice(equals + 1) }]
    const next = args[at + 1]
    return next === undefined ? [] : [{ name: arg, value: next }]
  })

/** "--limit abc: " for the option given `value` as @effect/cli reported it, or nothing when it is not found. */
const givenPrefix = (given: { readonly name: string; readonly value: string } | undefined) => given === undefined ? "" : `${given.name} ${given.value}: `

const typeWords: Readonly<Record<string, string>> = { integer: "a whole number", float: "a number", date: "a date" }

/**
 * One problem @effect/cli found with a command line, said as fleet says mistakes: which option, what
 * it was given, what it expects. Messages it does not know are kept as they are.
 */
const explainProblem = (problem: string, args: ReadonlyArray<string>, topic: HelpTopic): string => {
  const options = topic.subcommands.length === 0 ? optionsOf(topic) : []
  const unknown = /^Received unknown argument: '(.*)'$/.exec(problem)
  if (unknown !== null) {
    const given = unknown[1]!
    const end = args.indexOf("--")
    if (!given.startsWith("-") || (end >= 0 && args.indexOf(given, end) > end)) return `unexpected argument '${given}'`
    const name = given.split("=")[0]!
    const own = options.find((option) => option.names.includes(name))
    if (own !== undefined) {
      // One of the command's own options, left over: given twice, or without its value.
      const times = (end >= 0 ? args.slice(0, end) : args).filter((arg) => own.names.includes(arg.split("=")[0]!)).length
      return times > 1 ? `${name} is given ${times} times; it takes one value` : `${name} needs a value (${own.value})`
    }
    return `unknown option ${name}${didYouMean(name, options.flatMap((option) => option.names.filter((each) => each.startsWith("--"))))}`
  }
  if (/^Invalid subcommand for /.test(problem) && topic.subcommands.length > 0) {
    const given = args.find((arg) => arg.startsWith("-") && arg !== "--") ?? ""
    return `unknown option ${given.split("=")[0]}; expected one of its commands: ${topic.subcommands.map((sub) => sub.name).join(", ")}`
  }
  const corrected = /^The flag '(.*)' is not recognized\. Did you mean '(.*)'\?$/.exec(problem)
  if (corrected !== null) return `unknown option ${corrected[1]}; did you mean '${corrected[2]}'?`
  const missingOption = /^Expected to find option: '(.*)'$/.exec(problem)
  if (missingOption !== null) return `missing option ${missingOption[1]}`
  const missingArgument = /^Missing argument (<[^>]*>)/.exec(problem)
  if (missingArgument !== null) return `missing argument ${missingArgument[1]}`
  const notOfType = /^'(.*)' is not a (\w+)$/.exec(problem)
  if (notOfType !== null) {
    const value = notOfType[1]!
    const type = notOfType[2]!
    const given = givenValues(args).find((each) => each.value === value)
    return `${given === undefined ? `${value}: ` : givenPrefix(given)}expected ${typeWords[type] ?? `a ${type}`}`
  }
  const choices = /^Expected one of the following cases: (.*)$/.exec(problem)
  if (choices !== null) {
    const cases = choices[1]!.split(", ")
    const names = options.find((option) => option.value === cases.join(" | "))?.names ?? []
    return `${givenPrefix(givenValues(args).find((given) => names.includes(given.name) && !cases.includes(given.value)))}expected one of ${cases.join(", ")}`
  }
  return problem
}

/**
 * A command line @effect/cli could not parse (its ValidationError's text), explained the way fleet
 * reports a mistake: "error: fleet vms list: --state bogus: expected one of pending, …", one
 * line per problem, and where the command's help is.
 */
export const explainParseError = (root: HelpTopic, args: ReadonlyArray<string>, error: HelpDoc.HelpDoc): string => {
  const resolved = resolve(root, args)
  const { path, topic } = resolved._tag === "UnknownCommand" ? { path: [root.name], topic: root } : resolved
  const problems = paragraphs(blocks(error)).filter((text) => text.length > 0).map((text) => explainProblem(text, args, topic))
  const command = path.join(" ")
  return [
    problems.length === 1 ? `error: ${command}: ${problems[0]}` : `error: ${command}: ${problems.length} problems`,
    ...(problems.length === 1 ? [] : problems.map((problem) => `  - ${problem}`)),
    `(${command} --help: its arguments and options)`
  ].join("\n")
}
