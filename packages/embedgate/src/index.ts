// Library entry point: the gateway, its configuration and the token verifier.
export { Gateway, type GatewayOptions } from './gateway/server.js';
export { configSchema, type GatewayConfig, type IssuerConfig, type AppConfig } from './config/schema.js';
export { ConfigError, loadConfigFile, parseConfig, parseConfigText } from './config/load.js';
export { TokenVerifier, type VerifierOptions } from './tokens/verifier.js';
export { TokenError, IdpUnavailableError, type TokenFailure } from './tokens/errors.js';
export type { Identity } from './identity/identity.js';
