import { Either, ParseResult, Schema } from "effect"
import { Execution, type ExecutionId, ProcMetadata } from "./Domain.js"
import { parseJsonWithIds, type ProctorWire, type SubmitBody } from "./Wire.js"

/** Proctor v2 ("service") paths and headers. */
export const paths = {
  execution: "/execution",
  status: (id: string) => `/execution/${id}/status`,
  metadata: "/metadata",
  ping: "/ping"
} as const

export const headers = {
  email: "Email-Id",
  accessToken: "Access-Token",
  clientVersion: "Client-Version"
} as const

/** Proctor's plain-text answers, word for word (the client matches some of them). */
export const messages = {
  malformedRequest: "Failed to parse request body from CLI",
  jobExecutionError: "Failed to execute Job",
  pathParameterError: "Failed to translate path parameter to uint64",
  executionNotFound: "Execution context not Found",
  outdatedClient: (version: string) =>
    `Your Proctor client is using an outdated version: ${version}. To continue using proctor, please upgrade to latest version.`,
  invalidClientVersion: (detail: string) =>
    `Your Proctor client config is Invalid. Please contact your Proctor Administrator. Error: ${detail}`
} as const

const lenientString = Schema.optionalWith(Schema.String, { nullable: true, default: () => "" })

/** The v2 JSON of an execution (`id` already turned into a string by `parseJsonWithIds`). */
export const ExecutionJson = Schema.Struct({
  id: Schema.String,
  job_name: lenientString,
  name: lenientString,
  image_tag: lenientString,
  created_at: lenientString,
  updated_at: lenientString,
  status: Schema.String
})

export const ExecutionFromJson = Schema.transform(ExecutionJson, Execution, {
  strict: true,
  decode: (wire) => ({
    id: wire.id,
    jobName: wire.job_name,
    name: wire.name,
    imageTag: wire.image_tag,
    createdAt: wire.created_at,
    updatedAt: wire.updated_at,
    status: wire.status
  }),
  encode: (execution) => ({
    id: execution.id,
    job_name: execution.jobName,
    name: execution.name,
    image_tag: execution.imageTag,
    created_at: execution.createdAt,
    updated_at: execution.updatedAt,
    status: execution.status
  })
})

const VariableJson = Schema.Struct({ name: Schema.String, description: lenientString })
const variables = Schema.optionalWith(Schema.Array(VariableJson), { nullable: true, default: () => [] })

/** One item of v2 `GET /metadata`; everything but the name may be missing. */
export const ProcMetadataJson = Schema.Struct({
  name: Schema.String,
  description: lenientString,
  image_name: lenientString,
  env_vars: Schema.optionalWith(Schema.Struct({ secrets: variables, args: variables }), {
    nullable: true,
    default: () => ({ secrets: [], args: [] })
  }),
  authorized_groups: Schema.optionalWith(Schema.Array(Schema.String), { nullable: true, default: () => [] }),
  author: lenientString,
  contributors: lenientString,
  organization: lenientString
})

export const ProcMetadataFromJson = Schema.transform(ProcMetadataJson, ProcMetadata, {
  strict: true,
  decode: (wire) => ({
    name: wire.name,
    description: wire.description,
    imageName: wire.image_name,
    envVars: wire.env_vars,
    authorizedGroups: wire.authorized_groups,
    author: wire.author,
    contributors: wire.contributors,
    organization: wire.organization
  }),
  encode: (procMetadata) => ({
    name: procMetadata.name,
    description: procMetadata.description,
    image_name: procMetadata.imageName,
    env_vars: procMetadata.envVars,
    authorized_groups: procMetadata.authorizedGroups,
    author: procMetadata.author,
    contributors: procMetadata.contributors,
    organization: procMetadata.organization
  })
})

const decodeExecutionJson = Schema.decodeUnknownEither(ExecutionFromJson)
const decodeProcsJson = Schema.decodeUnknownEither(Schema.Array(ProcMetadataFromJson))

const decodeWith = <A>(decode: (input: unknown) => Either.Either<A, ParseResult.ParseError>) => (text: string): Either.Either<A, string> =>
  Either.flatMap(parseJsonWithIds(text), (json) =>
    Either.mapLeft(decode(json), (error) => `unexpected JSON: ${ParseResult.TreeFormatter.formatErrorSync(error)}`))

export const decodeExecution: (text: string) => Either.Either<Execution, string> = decodeWith(decodeExecutionJson)
export const decodeProcs: (text: string) => Either.Either<ReadonlyArray<ProcMetadata>, string> = decodeWith(decodeProcsJson)

/** The request body of `POST /execution`. */
export const submitBodyText = (body: SubmitBody): string => JSON.stringify({ name: body.proc, args: body.args })

export const V2Wire: ProctorWire = {
  version: "v2",
  submitRequest: (body) => ({ method: "POST", path: paths.execution, body: submitBodyText(body) }),
  statusRequest: (id: ExecutionId) => ({ method: "GET", path: paths.status(id) }),
  metadataRequest: { method: "GET", path: paths.metadata },
  pingRequest: { method: "GET", path: paths.ping },
  decodeExecution,
  decodeProcs
}

// ---------------------------------------------------------------------------------------------
// The other side: what proctor writes. Used by the simulator.

export interface ExecutionFields {
  readonly id: string
  readonly jobName: string
  readonly name: string
  readonly imageTag: string
  readonly createdAt: string
  readonly updatedAt: string
  readonly status: string
}

/** An execution as proctor writes it: `id` is a bare 64-bit integer, exactly as Go's encoder emits a uint64. */
export const executionJsonText = (execution: ExecutionFields): string => {
  if (!/^[0-9]+$/.test(execution.id)) throw new Error(`not an execution id: ${execution.id}`)
  return `{"id":${execution.id},"job_name":${JSON.stringify(execution.jobName)},"name":${JSON.stringify(execution.name)},` +
    `"image_tag":${JSON.stringify(execution.imageTag)},"created_at":${JSON.stringify(execution.createdAt)},` +
    `"updated_at":${JSON.stringify(execution.updatedAt)},"status":${JSON.stringify(execution.status)}}`
}

export const procsJsonText = (procs: ReadonlyArray<ProcMetadata>): string =>
  JSON.stringify(Schema.encodeSync(Schema.Array(ProcMetadataFromJson))(procs))
