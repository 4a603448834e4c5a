import { Either } from "effect"
import type { Execution, ExecutionId, ProcMetadata } from "./Domain.js"

/** What the client sends to run a proc. */
export interface SubmitBody {
  readonly proc: string
  readonly args: Readonly<Record<string, string>>
}

/** One request to proctor, before the client adds the server's address and its headers. */
export interface WireRequest {
  readonly method: "GET" | "POST"
  readonly path: string
  /** A JSON body. */
  readonly body?: string
}

/**
 * One generation of proctor's HTTP API: how to build each request and read each answer.
 * The client holds everything else (headers, timeouts, error classification), so adding the
 * legacy v1 API means writing one more of these.
 */
export interface ProctorWire {
  readonly version: string
  readonly submitRequest: (body: SubmitBody) => WireRequest
  readonly statusRequest: (id: ExecutionId) => WireRequest
  readonly metadataRequest: WireRequest
  readonly pingRequest: WireRequest
  /** Reads an execution from a response body; Left is a human-readable reason. */
  readonly decodeExecution: (text: string) => Either.Either<Execution, string>
  readonly decodeProcs: (text: string) => Either.Either<ReadonlyArray<ProcMetadata>, string>
}

const isDigit = (code: number) => code >= 48 && code <= 57
const isNumberChar = (code: number) => isDigit(code) || code === 45 || code === 43 || code === 46 || code === 69 || code === 101
const isSpace = (code: number) => code === 32 || code === 9 || code === 10 || code === 13

/**
 * Turns every bare integer value of the given key into a JSON string, anywhere in a JSON text,
 * so that `JSON.parse` never rounds a 64-bit id to a float. Strings (including keys and values
 * that merely contain `"id":`) are skipped over, not rewritten. Invalid JSON is returned as it
 * is for `JSON.parse` to reject.
 */
export const quoteIntegerField = (text: string, key = "id"): string => {
  let out = ""
  let copied = 0
  let lastString: string | undefined
  let valueOf: string | undefined
  let index = 0
  const length = text.length
  while (index < length) {
    const code = text.charCodeAt(index)
    if (code === 34) {
      const start = index + 1
      index = start
      while (index < length) {
        const inner = text.charCodeAt(index)
        if (inner === 92) index += 2
        else if (inner === 34) break
        else index++
      }
      lastString = text.slice(start, index)
      valueOf = undefined
      index++
    } else if (code === 58) {
      valueOf = lastString
      lastString = undefined
      index++
    } else if (code === 45 || isDigit(code)) {
      const start = index
      while (index < length && isNumberChar(text.charCodeAt(index))) index++
      if (valueOf === key) {
        const token = text.slice(start, index)
        if (/^-?[0-9]+$/.test(token)) {
          out += `${text.slice(copied, start)}"${token}"`
          copied = index
        }
      }
      valueOf = undefined
      lastString = undefined
    } else if (isSpace(code)) {
      index++
    } else {
      valueOf = undefined
      lastString = undefined
      index++
    }
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/** `JSON.parse` after protecting the 64-bit `id` fields; Left is the parser's complaint. */
export const parseJsonWithIds = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(quoteIntegerField(text)) as unknown)
  } catch (error) {
    return Either.left(`not JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
}
