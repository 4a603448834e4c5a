import { HttpApiSchema } from "@effect/platform"
import { Effect, ParseResult, Schema } from "effect"

/**
 * One problem with a piece of input: where it is (the keys leading to the field; empty for the
 * input as a whole) and what was expected. The same shape as the issues of the HTTP API's own
 * decode errors (less their `_tag`), so a client reads every 400 the same way; named apart from
 * theirs (`Issue`) in the OpenAPI document, where one name is one schema.
 */
export class Issue extends Schema.Class<Issue>("InputIssue")({
  path: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.String
}) {
  static at(path: string | ReadonlyArray<string | number>, message: string): Issue {
    return new Issue({ path: typeof path === "string" ? [path] : path, message })
  }
}

/** Input that cannot be accepted. Every problem found is listed, and nothing was written. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()(
  "InvalidInput",
  {
    message: Schema.String,
    issues: Schema.Array(Issue)
  },
  HttpApiSchema.annotations({ status: 400 })
) {
  static one(path: string | ReadonlyArray<string | number>, message: string): InvalidInput {
    return InvalidInput.fromIssues([Issue.at(path, message)])
  }

  static fromIssues(issues: ReadonlyArray<Issue>): InvalidInput {
    return new InvalidInput({ message: summaryOf(issues), issues })
  }

  /** The same problems, each top-level field named as the user wrote it (an option's name, say). */
  renamed(names: Readonly<Record<string, string>>): InvalidInput {
    return InvalidInput.fromIssues(this.issues.map((issue) => {
      const [first, ...rest] = issue.path
      return typeof first === "string" && names[first] !== undefined ? new Issue({ path: [names[first], ...rest], message: issue.message }) : issue
    }))
  }

  /** The same problems, with the message saying which input they are in (a file, say). */
  in(source: string): InvalidInput {
    return new InvalidInput({ message: `${source}: ${this.message}`, issues: this.issues })
  }
}

export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  {
    message: Schema.String,
    resource: Schema.String,
    id: Schema.String
  },
  HttpApiSchema.annotations({ status: 404 })
) {
  static of(resource: string, id: string): NotFound {
    return new NotFound({ message: `${resource} ${id} does not exist`, resource, id })
  }
}

export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  {
    message: Schema.String
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** Renders a path such as ["metadata", "owner"] or ["steps", 3, "name"] as "metadata.owner" / "steps[3].name". */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`
    const name = String(key)
    return out === "" ? name : `${out}.${name}`
  }, "")

/** One issue as Effect's `ArrayFormatter` reports it (the issues of the HTTP API's own decode errors too). */
export interface FormattedIssue {
  readonly _tag: ParseResult.ArrayFormatterIssue["_tag"]
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const literalExpected = /^Expected ("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null), actual (.*)$/s
const undefinedExpected = /^Expected undefined, actual /
const unexpectedKey = /^is unexpected, expected: (.*)$/s

const typeExpected = /^Expected (.+), actual (.*)$/s

/**
 * A value of the wrong kind, in words rather than the schema's type: `expected a mapping of fields
 * (key: value); got "deprecated"` for `Expected { readonly osVersions?: … }, actual "deprecated"`,
 * `expected a string; got 42`. A type it has no words for is left as the schema says it.
 */
const kindExpected = (message: string): string => {
  const match = typeExpected.exec(message)
  if (match === null) return message
  const [, type, actual] = match as unknown as [string, string, string]
  const kind = type === "string" ? "a string"
    : type === "number" ? "a number"
    : type === "boolean" ? "true or false"
    : /^(readonly \[|ReadonlyArray<)/.test(type) ? "a list"
    : /^(\{|Struct$)/.test(type) ? "a mapping of fields (key: value)"
    : undefined
  return kind === undefined ? message : `expected ${kind}; got ${actual}`
}

/** `"a" | "b"` or `"a"`, as `a, b`. */
const literalList = (literals: ReadonlyArray<string>) => literals.map((literal) => literal.replace(/^"(.*)"$/s, "$1")).join(", ")

/**
 * The issues of a schema parse error as a person reads them, in the order found, one or more per
 * field: an optional field's "Expected undefined" dropped beside the real problem; a value that
 * is none of a set of literals reported once, with the set; an unknown key said so, with the keys
 * that are known; a value of the wrong kind said in words ("expected a list; got 5"); the
 * "(Encoded side)" of a class's name left out.
 */
export const readableIssues = <I extends FormattedIssue>(issues: ReadonlyArray<I>): Array<I> => {
  const within = (inner: ReadonlyArray<PropertyKey>, outer: ReadonlyArray<PropertyKey>) =>
    inner.length >= outer.length && outer.every((key, index) => String(key) === String(inner[index]))
  // An optional field's "Expected undefined" says nothing when another issue is at or under its path.
  const meaningful = issues.filter((issue) =>
    !undefinedExpected.test(issue.message) || !issues.some((other) => other !== issue && !undefinedExpected.test(other.message) && within(other.path, issue.path)))
  const byPath = new Map<string, Array<I>>()
  for (const issue of meaningful) {
    const key = JSON.stringify(issue.path.map(String))
    byPath.set(key, [...(byPath.get(key) ?? []), issue])
  }
  return [...byPath.values()].flatMap((group) => {
    const literals = group.flatMap((issue) => {
      const match = literalExpected.exec(issue.message)
      return match === null ? [] : [{ expected: match[1]!, actual: match[2]! }]
    })
    const merged = literals.length > 1
      ? [{ ...group.find((issue) => literalExpected.test(issue.message))!, message: `expected one of ${literalList(literals.map((literal) => literal.expected))}; got ${literals[0]!.actual}` }]
      : []
    const rest = literals.length > 1 ? group.filter((issue) => !literalExpected.test(issue.message)) : group
    return [...merged, ...rest].map((issue) => {
      const unexpected = unexpectedKey.exec(issue.message)
      const expected = unexpected?.[1]?.split(" | ")
      const message = expected === undefined
        ? kindExpected(issue.message.replaceAll(" (Encoded side)", ""))
        : expected.every((key) => /^"(?:[^"\\]|\\.)*"$/s.test(key))
        ? `is not a field of this input; expected one of ${literalList(expected)}`
        // A key of a record (metadata) that its key schema refuses.
        : `is not an allowed key; expected ${expected.join(" or ")}`
      return message === issue.message ? issue : { ...issue, message }
    })
  })
}

/** An issue as a person reads it: where (when it is not the input as a whole), then what. */
export const describeIssue = (issue: { readonly path: ReadonlyArray<PropertyKey>; readonly message: string }): string =>
  issue.path.length === 0 ? issue.message : `${formatPath(issue.path)}: ${issue.message}`

/** The one-line summary of issues: the issue itself, or "N problems: " and each. */
export const summaryOf = (issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>): string =>
  issues.length === 1 ? describeIssue(issues[0]!) : `${issues.length} problems: ${issues.map(describeIssue).join("; ")}`

/** Every issue of a schema parse error, each with its path, as an InvalidInput. */
export const invalidInputFromParseError = (error: ParseResult.ParseError): InvalidInput =>
  InvalidInput.fromIssues(
    readableIssues(ParseResult.ArrayFormatter.formatErrorSync(error)).map((issue) =>
      new Issue({ path: issue.path.map((key) => typeof key === "number" ? key : String(key)), message: issue.message })
    )
  )

const strictParsing = { errors: "all", onExcessProperty: "error" } as const

/**
 * The schema, reporting every problem (not only the first) and rejecting unknown keys when the
 * HTTP API decodes a body or query with it.
 */
export const strictInput = <S extends Schema.Annotable.All>(schema: S): Schema.Annotable.Self<S> =>
  schema.annotations({ parseOptions: strictParsing }) as Schema.Annotable.Self<S>

/** Decodes unknown input with a schema, reporting every problem (not only the first) and rejecting unknown keys. */
export const decodeInput = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const decode = Schema.decodeUnknown(schema, strictParsing)
  return (input: unknown): Effect.Effect<A, InvalidInput> =>
    decode(input).pipe(Effect.mapError(invalidInputFromParseError))
}
