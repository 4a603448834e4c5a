import { Context, FiberRef } from "effect"
import type { Scope } from "./Scopes.js"

/** Who is acting: recorded on requests, runs and events, and sent to proctor as Email-Id. */
export interface Actor {
  readonly email: string
}

/**
 * An actor authenticated by an API token, with what the token allows: its scopes, and the
 * applications (globs) it is limited to — `undefined` for every application.
 */
export interface Caller extends Actor {
  readonly tokenId: string
  readonly tokenName: string
  readonly scopes: ReadonlyArray<Scope>
  readonly applications: ReadonlyArray<string> | undefined
}

/**
 * The caller of the request being handled (set by the API's authentication). Handlers check it
 * with `requireScope` / `authorizeApplication` (see Authorization.ts and README.md).
 */
export class CurrentActor extends Context.Tag("fleet/CurrentActor")<CurrentActor, Caller>() {}

/** fleet itself, for what its controllers do on their own (reconciling, scheduled runs). */
export const systemActor: Actor = { email: "fleet@localhost" }

/**
 * The caller authenticated for the HTTP request being answered, for what runs around the API
 * (the audit record of mutating requests); set by the authentication. Handlers use CurrentActor.
 */
export const requestCaller: FiberRef.FiberRef<Caller | undefined> = FiberRef.unsafeMake<Caller | undefined>(undefined)
