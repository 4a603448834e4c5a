import { Chunk, Deferred, Effect, Exit, Queue, type Scope } from "effect"

export interface GroupWriterOptions<I, O, E> {
  /** Writes a group in one go; the results in the group's order. */
  readonly write: (group: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, E>
  /** Items with the same key never share a group: a later one goes with the next group. */
  readonly key?: (item: I) => string
  /** The most items in one group. */
  readonly maxGroup?: number
}

/**
 * Writes items in groups, one write per group: while one group is written, the next gathers.
 * Alone, an item is written at once; under load, many share a round trip (and the database
 * parses one statement for all of them). Each caller waits for its own item's result, or for the
 * failure of its group's write. The writer runs until the scope closes.
 */
export const makeGroupWriter = <I, O, E>(options: GroupWriterOptions<I, O, E>): Effect.Effect<(item: I) => Effect.Effect<O, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    interface Waiting {
      readonly item: I
      readonly done: Deferred.Deferred<O, E>
    }
    const maxGroup = Math.max(1, options.maxGroup ?? 256)
    const queue = yield* Queue.unbounded<Waiting>()
    const split = (group: ReadonlyArray<Waiting>): { readonly now: ReadonlyArray<Waiting>; readonly later: ReadonlyArray<Waiting> } => {
      const key = options.key
      if (key === undefined) return { now: group, later: [] }
      const keys = new Set<string>()
      const now: Array<Waiting> = []
      const later: Array<Waiting> = []
      for (const waiting of group) {
        const itemKey = key(waiting.item)
        if (keys.has(itemKey)) {
          later.push(waiting)
        } else {
          keys.add(itemKey)
          now.push(waiting)
        }
      }
      return { now, later }
    }
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
      const { later, now } = split([yield* Queue.take(queue), ...Chunk.toReadonlyArray(yield* Queue.takeUpTo(queue, maxGroup - 1))])
      if (later.length > 0) yield* Queue.offerAll(queue, later)
      // Suspended: a write that throws fails its group's callers instead of stopping the writer.
      const written = yield* Effect.exit(Effect.suspend(() => options.write(now.map(({ item }) => item))))
      for (const [index, { done }] of now.entries()) {
        yield* Exit.isSuccess(written) ? Deferred.succeed(done, written.value[index]!) : Deferred.failCause(done, written.cause)
      }
    })))
    return (item: I) =>
      Effect.flatMap(Deferred.make<O, E>(), (done) => Effect.zipRight(Queue.offer(queue, { item, done }), Deferred.await(done)))
  })
