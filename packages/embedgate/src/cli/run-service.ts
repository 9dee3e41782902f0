// Runs a server command until SIGINT/SIGTERM: explains a failed listen (exit 1), drains on shutdown (exit 0).

export interface Service {
  readonly config: { listen: string };
  readonly logger: { info(message: string): void };
  listen(): Promise<unknown>;
  close(drainMs?: number): Promise<void>;
}

export async function runUntilSignal(service: Service, drainMs: number): Promise<number> {
  try {
    await service.listen();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(`embedgate: cannot listen on ${service.config.listen}: ${code === 'EADDRINUSE' ? 'the address is already in use' : (error as Error).message}\n`);
    await service.close();
    return 1;
  }
  // Listeners stay on: a second signal (Ctrl-C reaches cluster workers and their primary's SIGTERM follows) must
  // not cut the drain short.
  await new Promise<void>((resolve) => {
    process.on('SIGINT', () => resolve());
    process.on('SIGTERM', () => resolve());
  });
  service.logger.info(`shutting down: finishing requests in flight (at most ${drainMs / 1000} s)`);
  await service.close(drainMs);
  return 0;
}
