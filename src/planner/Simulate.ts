/**
 * The estimate: a deterministic list-scheduling simulation of a run under every limit.
 *
 * A step is three phases: create the replacement (a proctor execution), bake (no execution, the
 * replacement is up and watched), decommission the old VM (an execution). Limits:
 * - per fleet, at most `concurrency` steps between the start of create and the end of decommission;
 * - at most `maxFleetsInParallel` fleets started and not finished;
 * - at most `maxInFlight` proctor executions (create or decommission phases) at once.
 * Waves run one after another; approvals take no time here.
 *
 * Whenever something finishes, waiting decommissions get execution slots first (they end work in
 * progress and free fleet slots), then new steps start in plan order: the earliest fleet first,
 * and a new fleet only when a fleet slot and an execution slot are free. Ties are broken by the
 * order events were created, so the same input always gives the same times.
 */

export interface SimFleet {
  /** Indices into the run's step arrays, in the order the fleet runs them. */
  readonly steps: ReadonlyArray<number>
  readonly concurrency: number
}

export interface SimLimits {
  readonly maxFleetsInParallel: number
  readonly maxInFlight: number
  readonly createSeconds: number
  readonly bakeSeconds: number
  readonly decommissionSeconds: number
}

const enum Phase { Created, Baked, Decommissioned }

/** A binary min-heap over (time, sequence) pairs, carrying a phase and a step. */
class EventQueue {
  private readonly times: Array<number> = []
  private readonly seqs: Array<number> = []
  private readonly phases: Array<Phase> = []
  private readonly stepIds: Array<number> = []
  private sequence = 0

  get size(): number {
    return this.times.length
  }

  peekTime(): number {
    return this.times[0]!
  }

  push(time: number, phase: Phase, step: number): void {
    this.times.push(time)
    this.seqs.push(this.sequence++)
    this.phases.push(phase)
    this.stepIds.push(step)
    this.up(this.times.length - 1)
  }

  pop(): { readonly phase: Phase; readonly step: number } {
    const top = { phase: this.phases[0]!, step: this.stepIds[0]! }
    const last = this.times.length - 1
    this.swap(0, last)
    this.times.pop()
    this.seqs.pop()
    this.phases.pop()
    this.stepIds.pop()
    this.down(0)
    return top
  }

  private less(a: number, b: number): boolean {
    return this.times[a]! < this.times[b]! || (this.times[a] === this.times[b] && this.seqs[a]! < this.seqs[b]!)
  }

  private swap(a: number, b: number): void {
    for (const array of [this.times, this.seqs, this.phases, this.stepIds] as Array<Array<number>>) {
      const value = array[a]!
      array[a] = array[b]!
      array[b] = value
    }
  }

  private up(index: number): void {
    let child = index
    while (child > 0) {
      const parent = (child - 1) >> 1
      if (!this.less(child, parent)) return
      this.swap(child, parent)
      child = parent
    }
  }

  private down(index: number): void {
    let parent = index
    for (;;) {
      const left = parent * 2 + 1
      const right = left + 1
      let smallest = parent
      if (left < this.times.length && this.less(left, smallest)) smallest = left
      if (right < this.times.length && this.less(right, smallest)) smallest = right
      if (smallest === parent) return
      this.swap(parent, smallest)
      parent = smallest
    }
  }
}

/** A min-heap of small integers (fleet positions): the earliest fleet with a free slot starts next. */
class IndexHeap {
  private readonly items: Array<number> = []

  get size(): number {
    return this.items.length
  }

  push(value: number): void {
    const items = this.items
    items.push(value)
    let child = items.length - 1
    while (child > 0) {
      const parent = (child - 1) >> 1
      if (items[parent]! <= items[child]!) break
      ;[items[parent], items[child]] = [items[child]!, items[parent]!]
      child = parent
    }
  }

  pop(): number {
    const items = this.items
    const top = items[0]!
    const last = items.pop()!
    if (items.length > 0) {
      items[0] = last
      let parent = 0
      for (;;) {
        const left = parent * 2 + 1
        const right = left + 1
        let smallest = parent
        if (left < items.length && items[left]! < items[smallest]!) smallest = left
        if (right < items.length && items[right]! < items[smallest]!) smallest = right
        if (smallest === parent) break
        ;[items[parent], items[smallest]] = [items[smallest]!, items[parent]!]
        parent = smallest
      }
    }
    return top
  }
}

/**
 * Simulates one wave starting at `start`, writing each step's start and end into `starts` / `ends`
 * (indexed by step). Returns when the wave's last step ends (`start` for an empty wave).
 */
export const simulateWave = (
  fleets: ReadonlyArray<SimFleet>,
  start: number,
  limits: SimLimits,
  starts: Array<number>,
  ends: Array<number>
): number => {
  const fleetOfStep = new Map<number, number>()
  fleets.forEach((fleet, position) => fleet.steps.forEach((step) => fleetOfStep.set(step, position)))
  const next = fleets.map(() => 0)
  const running = fleets.map(() => 0)
  const done = fleets.map(() => 0)
  const ready = fleets.map(() => false)
  const readyFleets = new IndexHeap()
  const events = new EventQueue()
  const decommissionQueue: Array<number> = []
  let decommissionHead = 0
  let nextFleet = 0
  let activeFleets = 0
  let inFlight = 0
  let end = start

  const markReady = (position: number): void => {
    const fleet = fleets[position]!
    if (!ready[position] && running[position]! < fleet.concurrency && next[position]! < fleet.steps.length) {
      ready[position] = true
      readyFleets.push(position)
    }
  }

  const dispatch = (time: number): void => {
    while (inFlight < limits.maxInFlight && decommissionHead < decommissionQueue.length) {
      const step = decommissionQueue[decommissionHead++]!
      inFlight++
      events.push(time + limits.decommissionSeconds, Phase.Decommissioned, step)
    }
    while (inFlight < limits.maxInFlight) {
      if (readyFleets.size === 0) {
        if (activeFleets >= limits.maxFleetsInParallel || nextFleet >= fleets.length) return
        const position = nextFleet++
        if (fleets[position]!.steps.length === 0) continue
        activeFleets++
        markReady(position)
        continue
      }
      const position = readyFleets.pop()
      ready[position] = false
      const fleet = fleets[position]!
      const step = fleet.steps[next[position]!]!
      next[position]!++
      running[position]!++
      inFlight++
      starts[step] = time
      events.push(time + limits.createSeconds, Phase.Created, step)
      markReady(position)
    }
  }

  dispatch(start)
  while (events.size > 0) {
    const time = events.peekTime()
    while (events.size > 0 && events.peekTime() === time) {
      const { phase, step } = events.pop()
      switch (phase) {
        case Phase.Created:
          inFlight--
          if (limits.bakeSeconds > 0) events.push(time + limits.bakeSeconds, Phase.Baked, step)
          else decommissionQueue.push(step)
          break
        case Phase.Baked:
          decommissionQueue.push(step)
          break
        case Phase.Decommissioned: {
          inFlight--
          ends[step] = time
          end = Math.max(end, time)
          const position = fleetOfStep.get(step)!
          running[position]!--
          done[position]!++
          if (done[position] === fleets[position]!.steps.length) activeFleets--
          else markReady(position)
          break
        }
      }
    }
    dispatch(time)
  }
  return end
}
