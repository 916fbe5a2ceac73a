// Turns a failed file-system call into an OperatingError from the catalogue, naming the file and
// the groups whose writes it carried, so the host can block exactly those clients.

import { OperatingError, OperatingErrorCode } from '../lib/errors.js';

export function fsError(e: unknown, what: string, file: string, groups: readonly string[]): OperatingError {
  if (e instanceof OperatingError) return e;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  const code =
    errno === 'ENOSPC' || errno === 'EDQUOT' ? OperatingErrorCode.DiskFull
      : errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS' ? OperatingErrorCode.PermissionDenied
        : OperatingErrorCode.Io;
  const shown = groups.length > 8 ? `${groups.slice(0, 8).join(', ')} and ${groups.length - 8} more` : groups.join(', ');
  const message = `${what} failed on ${file} (${errno})` + (groups.length > 0 ? ` for group(s) ${shown}` : '');
  return new OperatingError(code, message, { file, errno, groups: groups.join(','), operation: what });
}
