import { Cause, Effect, Option } from "effect"
import type { ProctorClientService } from "../proctor/ProctorClient.js"
import { labelSet, proctorCalls, proctorDuration } from "./Metrics.js"

const outcomeOf = (error: { readonly _tag: string }): string => {
  switch (error._tag) {
    case "ProctorTransientError":
      return "transient"
    case "ProctorPermanentError":
      return "permanent"
    case "ExecutionNotFound":
      return "not_found"
    default:
      return "error"
  }
}

/** Counts and times a call by its outcome; an interrupted call is neither. */
const measured = <A, E extends { readonly _tag: string }, R>(operation: string, effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = performance.now()
    const done = (outcome: string) => {
      proctorCalls.unsafeUpdate(1, labelSet(["operation", operation], ["outcome", outcome]))
      proctorDuration.unsafeUpdate((performance.now() - started) / 1000, labelSet(["operation", operation]))
    }
    return Effect.matchCauseEffect(effect, {
      onSuccess: (value) => {
        done("ok")
        return Effect.succeed(value)
      },
      onFailure: (cause) => {
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure)) done(outcomeOf(failure.value))
        else if (!Cause.isInterruptedOnly(cause)) done("error")
        return Effect.failCause(cause)
      }
    })
  })

/** The same client, counting every call by operation and outcome and timing it. */
export const instrumentProctor = (client: ProctorClientService): ProctorClientService => ({
  submit: (input) => measured("submit", client.submit(input)),
  status: (id) => measured("status", client.status(id)),
  listProcs: () => measured("metadata", client.listProcs()),
  ping: () => measured("ping", client.ping())
})
