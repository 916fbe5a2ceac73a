// The catalogue of operating errors (not protocol errors, not bugs): each has a stable code that
// callers switch on and that logs and the management API show. Codes only grow at the end.

export const OperatingErrorCode = {
  NotLeader: 'E_NOT_LEADER',
  Unreachable: 'E_UNREACHABLE',
  DiskFull: 'E_DISK_FULL',
  PermissionDenied: 'E_PERMISSION_DENIED',
  Corrupted: 'E_CORRUPTED',
  Timeout: 'E_TIMEOUT',
  Overloaded: 'E_OVERLOADED',
  Closed: 'E_CLOSED',
  Io: 'E_IO',
  BadConfig: 'E_BAD_CONFIG',
} as const;
export type OperatingErrorCode = (typeof OperatingErrorCode)[keyof typeof OperatingErrorCode];

export class OperatingError extends Error {
  override readonly name = 'OperatingError';
  constructor(
    readonly code: OperatingErrorCode,
    message: string,
    readonly details: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

export function isOperatingError(e: unknown, code?: OperatingErrorCode): e is OperatingError {
  return e instanceof OperatingError && (code === undefined || e.code === code);
}
