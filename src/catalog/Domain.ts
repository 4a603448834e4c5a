import { Schema } from "effect"

/** Printable text without control characters (Postgres rejects NUL; logs and names should not carry the rest). */
const printable = /^[^\p{Cc}]*$/u

const label = (pattern: RegExp, description: string) =>
  Schema.String.pipe(
    // The description too: it is what a record's key that does not match is said to expect.
    Schema.pattern(pattern, { message: () => `expected ${description}`, description })
  )

export const ApplicationName = label(
  /^[a-z][a-z0-9-]{0,38}[a-z0-9]$/,
  "an application name: 2-40 characters, lowercase letters, digits and '-', starting with a letter"
).pipe(Schema.brand("ApplicationName"))
export type ApplicationName = typeof ApplicationName.Type

export const EnvironmentName = label(
  /^[a-z][a-z0-9-]{0,19}$/,
  "an environment name: 1-20 characters, lowercase letters, digits and '-'"
).pipe(Schema.brand("EnvironmentName"))
export type EnvironmentName = typeof EnvironmentName.Type

export const StackName = label(
  /^[a-z][a-z0-9]{0,11}$/,
  "a stack name: 1-12 lowercase letters and digits"
).pipe(Schema.brand("StackName"))
export type StackName = typeof StackName.Type

export const OsVersion = label(
  /^[a-z][a-z0-9]*-[0-9][0-9.]{0,15}$/,
  "an OS version such as ubuntu-22.04"
).pipe(Schema.brand("OsVersion"))
export type OsVersion = typeof OsVersion.Type

export const MachineType = label(
  /^[a-z0-9][a-z0-9.-]{0,39}$/,
  "a machine type such as n2-standard-4"
).pipe(Schema.brand("MachineType"))
export type MachineType = typeof MachineType.Type

/** The short form of a value used inside VM names. */
const ShortForm = label(/^[a-z0-9]{1,8}$/, "1-8 lowercase letters and digits")

/** A proctor proc name. */
export const ProcName = label(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, "a proctor proc name").pipe(Schema.brand("ProcName"))
export type ProcName = typeof ProcName.Type

/** Args proctor adds itself; a catalog must not send them. */
export const reservedArgNames: ReadonlyArray<string> = ["EXECUTION_ID", "JOB_NAME", "EXECUTION_NAME", "USER_EMAIL", "IMAGE_TAG"]

const ArgName = label(/^[A-Z][A-Z0-9_]{0,63}$/, "an argument name in UPPER_SNAKE_CASE").pipe(
  Schema.filter((name) => !reservedArgNames.includes(name) || `${name} is added by proctor itself and cannot be set`)
)
const ArgValue = Schema.String.pipe(Schema.maxLength(1000), Schema.pattern(printable, { message: () => "expected printable text" }))
export const ProcArgs = Schema.Record({ key: ArgName, value: ArgValue })

/** A glob over names: '*' matches any run of characters, '?' one character. */
export const NameGlob = label(/^[a-z0-9*?][a-z0-9*?-]{0,39}$/, "a name or glob (letters, digits, '-', '*', '?')")

export class EnvironmentEntry extends Schema.Class<EnvironmentEntry>("EnvironmentEntry")({
  name: EnvironmentName,
  short: ShortForm
}) {}

export class OsVersionEntry extends Schema.Class<OsVersionEntry>("OsVersionEntry")({
  name: OsVersion,
  short: ShortForm
}) {}

export class CreateProc extends Schema.Class<CreateProc>("CreateProc")({
  stack: StackName,
  os: Schema.NonEmptyArray(OsVersion),
  proc: ProcName,
  args: Schema.optionalWith(ProcArgs, { default: () => ({}) })
}) {}

export class SingleProc extends Schema.Class<SingleProc>("SingleProc")({
  proc: ProcName,
  args: Schema.optionalWith(ProcArgs, { default: () => ({}) })
}) {}

/**
 * The catalog: which values fleet accepts, and which proctor proc creates, checks and
 * decommissions a VM. Loaded from YAML (see src/catalog/catalog.yaml).
 */
export class CatalogSpec extends Schema.Class<CatalogSpec>("CatalogSpec")({
  environments: Schema.NonEmptyArray(EnvironmentEntry),
  stacks: Schema.NonEmptyArray(StackName),
  osVersions: Schema.NonEmptyArray(OsVersionEntry),
  machineTypes: Schema.NonEmptyArray(MachineType),
  applications: Schema.optionalWith(Schema.NonEmptyArray(NameGlob), { default: () => ["*"] as const }),
  procs: Schema.Struct({
    create: Schema.NonEmptyArray(CreateProc),
    decommission: SingleProc,
    readiness: Schema.optional(SingleProc)
  })
}) {}

/** Metadata attached to a VM request: a small map of short printable strings. */
export const Metadata = Schema.Record({
  key: label(/^[a-zA-Z][a-zA-Z0-9_.-]{0,62}$/, "a metadata key: a letter, then up to 62 letters, digits, '_', '.', '-'"),
  value: Schema.String.pipe(
    Schema.maxLength(256, { message: () => "expected at most 256 characters" }),
    Schema.pattern(printable, { message: () => "expected printable text without control characters" })
  )
}).pipe(
  Schema.filter((record) => Object.keys(record).length <= 32 || "expected at most 32 metadata entries")
)
export type Metadata = typeof Metadata.Type

/** A name the catalog does not know, said with what was given and what it knows: `unknown stack "rust"; expected one of go, java`. */
export const unknownName = (what: string, given: string, known: Iterable<string>): string =>
  `unknown ${what} ${JSON.stringify(given)}; expected one of ${[...known].join(", ")}`
