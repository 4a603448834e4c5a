/** fleet's version, as package.json has it (a test holds the two together): for `fleet --version` and the OpenAPI document. */
export const version = "0.1.0"
