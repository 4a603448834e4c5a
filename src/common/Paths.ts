import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * The project's root folder (where package.json is), found from this module's location so that
 * the files fleet ships beside its code (migrations, the catalog, plans) are found the same way
 * whether it runs from its TypeScript sources or from the bundle in dist/.
 */
export const packageRoot: string = (() => {
  let directory = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(directory, "package.json")) || !existsSync(join(directory, "migrations"))) {
    const parent = dirname(directory)
    if (parent === directory) throw new Error(`fleet's package root was not found above ${fileURLToPath(import.meta.url)}`)
    directory = parent
  }
  return directory
})()

export const fromRoot = (...parts: ReadonlyArray<string>): string => join(packageRoot, ...parts)
