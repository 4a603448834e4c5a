import { Config, ConfigError, Duration, Either, Option } from "effect"

/**
 * A duration setting (environment variable), in Effect's notation ("500 millis", "30 seconds",
 * "5 minutes"); a value it does not read is refused with an example of one it does, where
 * `Config.duration` says only "Expected a duration".
 */
export const durationSetting = (name: string): Config.Config<Duration.Duration> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Option.match(Duration.decodeUnknown(text.trim()), {
        onNone: () => Either.left(ConfigError.InvalidData([], `expected a duration such as "500 millis", "30 seconds" or "5 minutes", not ${JSON.stringify(text)}`)),
        onSome: Either.right
      })
    )
  )

/** Each problem of a configuration error on a line of its own, once (a setting read twice fails twice): the variable, then what is wrong with it. */
export const settingProblems = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...new Set([...settingProblems(error.left), ...settingProblems(error.right)])]
    case "InvalidData":
    case "MissingData":
    case "SourceUnavailable":
    case "Unsupported":
      return [`${error.path.length > 0 ? `${error.path.join(".")}: ` : ""}${error.message}`]
  }
}
