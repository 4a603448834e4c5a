/**
 * What fleet prints for people numbers waves and steps from 1, as people count. The API's `wave`,
 * `currentWave`, `index` and `step` fields index arrays and count from 0; this is the one place that
 * turns the one into the other.
 */
export const numbered = (index: number): string => String(index + 1)
