import { HttpApiSchema } from "@effect/platform"
import { Effect, ParseResult, Schema } from "effect"

/** One problem with a piece of input: where it is (a dotted path, or "body") and what was expected. */
export class Issue extends Schema.Class<Issue>("Issue")({
  path: Schema.String,
  message: Schema.String
}) {}

/** Input that cannot be accepted. Every problem found is listed, and nothing was written. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()(
  "InvalidInput",
  {
    message: Schema.String,
    issues: Schema.Array(Issue)
  },
  HttpApiSchema.annotations({ status: 400 })
) {
  static one(path: string, message: string): InvalidInput {
    return new InvalidInput({ message: `${path}: ${message}`, issues: [new Issue({ path, message })] })
  }

  static fromIssues(issues: ReadonlyArray<Issue>): InvalidInput {
    const message = issues.length === 1
      ? `${issues[0]!.path}: ${issues[0]!.message}`
      : `${issues.length} problems: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")}`
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
export const formatPath = (path: ReadonlyArray<PropertyKey>, root = "body"): string => {
  if (path.length === 0) return root
  return path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`
    const name = String(key)
    return out === "" ? name : `${out}.${name}`
  }, "")
}

/** Every issue of a schema parse error, each with its path, as an InvalidInput. */
export const invalidInputFromParseError = (error: ParseResult.ParseError, root = "body"): InvalidInput =>
  InvalidInput.fromIssues(
    ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
      new Issue({ path: formatPath(issue.path, root), message: issue.message })
    )
  )

/** Decodes unknown input with a schema, reporting every problem (not only the first) and rejecting unknown keys. */
export const decodeInput = <A, I>(schema: Schema.Schema<A, I, never>, root = "body") => {
  const decode = Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Effect.Effect<A, InvalidInput> =>
    decode(input).pipe(Effect.mapError((error) => invalidInputFromParseError(error, root)))
}
