// Structured logging: one JSON line per event, with time, level and component. Pure formatting;
// the composition root (cli/) hands in the sink (stdout) and the clock.

import type { Clock } from './random.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger for a sub-component: `component` is appended (`broker.channel`). */
  child(component: string): Logger;
}

export interface LoggerOptions {
  sink: (line: string) => void;
  clock: Clock;
  level: LogLevel;
  component: string;
  /** Fields stamped on every line (e.g. node id). */
  base?: LogFields;
  /** When given, the level is read from here at each line (a reload changes it for every child logger). */
  levelRef?: { level: LogLevel };
}

export function createLogger(options: LoggerOptions): Logger {
  const fixed = levelRank[options.level];
  const ref = options.levelRef;
  const emit = (level: LogLevel, event: string, fields?: LogFields): void => {
    if (levelRank[level] < (ref === undefined ? fixed : levelRank[ref.level])) return;
    const record: Record<string, unknown> = {
      t: new Date(options.clock.nowMs()).toISOString(),
      level,
      component: options.component,
      event,
      ...options.base,
      ...fields,
    };
    options.sink(JSON.stringify(record) + '\n');
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (c) => createLogger({ ...options, component: `${options.component}.${c}` }),
  };
}

/** A logger that drops everything (tests and benchmarks that do not care). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
