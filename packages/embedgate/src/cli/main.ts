// Dispatches `embedgate <command>` to one module per command.
import { checkConfigCommand } from './check-config.js';
import { idpCommand } from './idp.js';
import { serveCommand } from './serve.js';
import { tokenCommand } from './token.js';
import { usersCommand } from './users.js';

export const USAGE = `embedgate — authentication and authorization in front of embedded data apps

Usage: embedgate <command> [options]

Commands:
  serve --config FILE          run the gateway
  check-config --config FILE   validate a config file and exit (0 valid, 2 invalid)
  idp --config FILE            run the embedded identity provider (idp rotate-keys: add a signing key)
  users <action> --config FILE manage the identity provider's users (add, list, set-roles, remove)
  token --issuer URL …         get an access token (client credentials or device flow) for scripts

Run "embedgate <command> --help" for a command's options.`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  'check-config': checkConfigCommand,
  token: tokenCommand,
  idp: idpCommand,
  users: usersCommand,
};

/** Returns the process exit code: 0 success, 1 runtime failure, 2 usage or configuration error. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`embedgate: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  return command(rest);
}
