import { Context } from "effect"

/** Who is acting: recorded on requests, runs and events, and sent to proctor as Email-Id. */
export interface Actor {
  readonly email: string
}

/** The actor of the request being handled (set by the API's authentication). */
export class CurrentActor extends Context.Tag("fleet/CurrentActor")<CurrentActor, Actor>() {}

/** fleet itself, for what its controllers do on their own (reconciling, scheduled runs). */
export const systemActor: Actor = { email: "fleet@localhost" }
