// Dispatches `embedgate <command>` to one module per command.

export const USAGE = `embedgate — authentication and authorization in front of embedded data apps

Usage: embedgate <command> [options]

Commands:
  serve --config FILE          run the gateway
  check-config --config FILE   validate a config file and exit (0 valid, 2 invalid)
  idp --config FILE            run the embedded identity provider (idp rotate-keys: add a signing key)
  users <action> --config FILE manage the identity provider's users (add, list, set-roles, remove)
  token --issuer URL …         get an access token (client credentials or device flow) for scripts
  sessions list|revoke …       the gateway's live sessions; end all of one user's
  demo                         run the demo: IdP, gateway, sample apps and a host portal, on loopback

Run "embedgate <command> --help" for a command's options.`;

type Command = (args: string[]) => Promise<number>;

/** Each command's module is loaded only when it runs, so `embedgate token` does not load the gateway. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).serveCommand,
  'check-config': async () => (await import('./check-config.js')).checkConfigCommand,
  token: async () => (await import('./token.js')).tokenCommand,
  idp: async () => (await import('./idp.js')).idpCommand,
  users: async () => (await import('./users.js')).usersCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  sessions: async () => (await import('./sessions.js')).sessionsCommand,
};

/** Returns the process exit code: 0 success, 1 runtime failure, 2 usage or configuration error. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`embedgate: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  return (await load())(rest);
}
