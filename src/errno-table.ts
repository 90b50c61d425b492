// Xen's error numbers, transcribed from xen/include/public/errno.h (Xen 4.17, the
// XEN_ERRNO(name, value) list). test/abi-probe.test.ts compiles a C probe against the installed
// header and fails if any entry here differs. On x86 Linux every value equals the host errno,
// so privcmd's raw "-value" results need no translation.

export interface ErrnoEntry {
  readonly num: number;
  readonly name: string;
  readonly desc: string;
}

export const XEN_ERRNO = [
  { num: 1, name: 'EPERM', desc: 'Operation not permitted' },
  { num: 2, name: 'ENOENT', desc: 'No such file or directory' },
  { num: 3, name: 'ESRCH', desc: 'No such process' },
  { num: 4, name: 'EINTR', desc: 'Interrupted system call' },
  { num: 5, name: 'EIO', desc: 'I/O error' },
  { num: 6, name: 'ENXIO', desc: 'No such device or address' },
  { num: 7, name: 'E2BIG', desc: 'Arg list too long' },
  { num: 8, name: 'ENOEXEC', desc: 'Exec format error' },
  { num: 9, name: 'EBADF', desc: 'Bad file number' },
  { num: 10, name: 'ECHILD', desc: 'No child processes' },
  { num: 11, name: 'EAGAIN', desc: 'Try again' },
  { num: 11, name: 'EWOULDBLOCK', desc: 'Operation would block.  Aliases EAGAIN' },
  { num: 12, name: 'ENOMEM', desc: 'Out of memory' },
  { num: 13, name: 'EACCES', desc: 'Permission denied' },
  { num: 14, name: 'EFAULT', desc: 'Bad address' },
  { num: 16, name: 'EBUSY', desc: 'Device or resource busy' },
  { num: 17, name: 'EEXIST', desc: 'File exists' },
  { num: 18, name: 'EXDEV', desc: 'Cross-device link' },
  { num: 19, name: 'ENODEV', desc: 'No such device' },
  { num: 20, name: 'ENOTDIR', desc: 'Not a directory' },
  { num: 21, name: 'EISDIR', desc: 'Is a directory' },
  { num: 22, name: 'EINVAL', desc: 'Invalid argument' },
  { num: 23, name: 'ENFILE', desc: 'File table overflow' },
  { num: 24, name: 'EMFILE', desc: 'Too many open files' },
  { num: 28, name: 'ENOSPC', desc: 'No space left on device' },
  { num: 30, name: 'EROFS', desc: 'Read-only file system' },
  { num: 31, name: 'EMLINK', desc: 'Too many links' },
  { num: 33, name: 'EDOM', desc: 'Math argument out of domain of func' },
  { num: 34, name: 'ERANGE', desc: 'Math result not representable' },
  { num: 35, name: 'EDEADLK', desc: 'Resource deadlock would occur' },
  { num: 35, name: 'EDEADLOCK', desc: 'Resource deadlock would occur. Aliases EDEADLK' },
  { num: 36, name: 'ENAMETOOLONG', desc: 'File name too long' },
  { num: 37, name: 'ENOLCK', desc: 'No record locks available' },
  { num: 38, name: 'ENOSYS', desc: 'Function not implemented' },
  { num: 39, name: 'ENOTEMPTY', desc: 'Directory not empty' },
  { num: 61, name: 'ENODATA', desc: 'No data available' },
  { num: 62, name: 'ETIME', desc: 'Timer expired' },
  { num: 74, name: 'EBADMSG', desc: 'Not a data message' },
  { num: 75, name: 'EOVERFLOW', desc: 'Value too large for defined data type' },
  { num: 84, name: 'EILSEQ', desc: 'Illegal byte sequence' },
  { num: 85, name: 'ERESTART', desc: 'Interrupted system call should be restarted' },
  { num: 88, name: 'ENOTSOCK', desc: 'Socket operation on non-socket' },
  { num: 90, name: 'EMSGSIZE', desc: 'Message too large' },
  { num: 95, name: 'EOPNOTSUPP', desc: 'Operation not supported on transport endpoint' },
  { num: 98, name: 'EADDRINUSE', desc: 'Address already in use' },
  { num: 99, name: 'EADDRNOTAVAIL', desc: 'Cannot assign requested address' },
  { num: 105, name: 'ENOBUFS', desc: 'No buffer space available' },
  { num: 106, name: 'EISCONN', desc: 'Transport endpoint is already connected' },
  { num: 107, name: 'ENOTCONN', desc: 'Transport endpoint is not connected' },
  { num: 110, name: 'ETIMEDOUT', desc: 'Connection timed out' },
  { num: 111, name: 'ECONNREFUSED', desc: 'Connection refused' },
] as const satisfies readonly ErrnoEntry[];

/** The name of every errno in Xen's errno.h ("EFAULT", "ENOMEM", ...). */
export type ErrnoName = (typeof XEN_ERRNO)[number]['name'];
