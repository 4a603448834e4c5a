import { HttpApiSchema } from "@effect/platform"
import { Effect, ParseResult, Schema } from "effect"

/**
 * One problem with a piece of input: where it is (the keys leading to the field; empty for the
 * input as a whole) and what was expected. The same shape as the issues of the HTTP API's own
 * decode errors, so a client reads every 400 the same way.
 */
export class Issue extends Schema.Class<Issue>("Issue")({
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
    const describe = (issue: Issue) => issue.path.length === 0 ? issue.message : `${formatPath(issue.path)}: ${issue.message}`
    const message = issues.length === 1
      ? describe(issues[0]!)
      : `${issues.length} problems: ${issues.map(describe).join("; ")}`
    return new InvalidInput({ message, issues })
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

/** Every issue of a schema parse error, each with its path, as an InvalidInput. */
export const invalidInputFromParseError = (error: ParseResult.ParseError): InvalidInput =>
  InvalidInput.fromIssues(
    ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
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
