import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem, SubsystemComponents, SubsystemFactory, SubsystemRegistry } from './subsystem.js';

/** What every factory gets; the set adds its own logger child and itself as the registry. */
export type SharedComponents = Omit<SubsystemComponents, 'logger' | 'subsystems'> & { logger: Logger };

/**
 * The daemon's subsystems in list order: built together, started in order, stopped in reverse
 * (see subsystem.ts for where each step sits in the daemon's lifecycle).
 */
export class SubsystemSet implements SubsystemRegistry {
  private readonly built: Subsystem[] = [];
  private readonly started: Subsystem[] = [];
  private readonly logger: Logger;

  /** Runs every factory in order. A factory that throws aborts the build (nothing has started). */
  constructor(factories: readonly SubsystemFactory[], components: SharedComponents) {
    this.logger = components.logger.child({ component: 'daemon' });
    for (const factory of factories) {
      if (this.get(factory.name)) throw new LoomError('ERR_CONFLICT', `subsystem "${factory.name}" listed twice`);
      const subsystem = factory.create({ ...components, logger: components.logger.child({ component: factory.name }), subsystems: this });
      if (!subsystem) {
        this.logger.info({ subsystem: factory.name }, 'subsystem disabled');
        continue;
      }
      if (subsystem.name !== factory.name) throw new LoomError('ERR_INTERNAL', `subsystem factory "${factory.name}" built "${subsystem.name}"`);
      this.built.push(subsystem);
      const report = subsystem.report?.bind(subsystem);
      if (report) components.api.registerReportSection(subsystem.name, report);
    }
  }

  get(name: string): Subsystem | undefined {
    return this.built.find((s) => s.name === name);
  }

  names(): string[] {
    return this.built.map((s) => s.name);
  }

  /**
   * Starts each in list order, awaiting each. If one fails, the ones already started (and the
   * failed one, whose stop must be harmless) are stopped in reverse and its error is thrown.
   */
  async startAll(): Promise<void> {
    for (const subsystem of this.built) {
      if (this.started.includes(subsystem)) continue;
      this.started.push(subsystem);
      try {
        await subsystem.start();
      } catch (err) {
        const e = toLoomError(err);
        this.logger.error({ subsystem: subsystem.name, code: e.code, err: e.message }, 'subsystem failed to start');
        await this.stopAll();
        throw e;
      }
      this.logger.debug({ subsystem: subsystem.name }, 'subsystem started');
    }
  }

  /** Stops every started subsystem in reverse order; one failing to stop does not keep the others running. Idempotent. */
  async stopAll(): Promise<void> {
    while (this.started.length > 0) {
      const subsystem = this.started.pop()!;
      try {
        await subsystem.stop();
      } catch (err) {
        const e = toLoomError(err);
        this.logger.error({ subsystem: subsystem.name, code: e.code, err: e.message }, 'subsystem did not stop cleanly');
      }
    }
  }
}
