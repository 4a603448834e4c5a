import { Effect } from "effect"
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

const measured = <A, E extends { readonly _tag: string }, R>(operation: string, effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = performance.now()
    return effect.pipe(
      Effect.tapBoth({
        onSuccess: () => Effect.sync(() => proctorCalls.unsafeUpdate(1, labelSet(["operation", operation], ["outcome", "ok"]))),
        onFailure: (error) => Effect.sync(() => proctorCalls.unsafeUpdate(1, labelSet(["operation", operation], ["outcome", outcomeOf(error)])))
      }),
      Effect.ensuring(Effect.sync(() => proctorDuration.unsafeUpdate((performance.now() - started) / 1000, labelSet(["operation", operation]))))
    )
  })

/** The same client, counting every call by operation and outcome and timing it. */
export const instrumentProctor = (client: ProctorClientService): ProctorClientService => ({
  submit: (input) => measured("submit", client.submit(input)),
  status: (id) => measured("status", client.status(id)),
  listProcs: () => measured("metadata", client.listProcs()),
  ping: () => measured("ping", client.ping())
})
