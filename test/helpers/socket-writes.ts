import net from 'node:net';

/**
 * Socket writes while `fn` runs (a corked writev is one), counted where Node hands them to the
 * socket; `only` narrows them to some sockets (e.g. those to PostgreSQL's port).
 */
export async function socketWritesDuring(fn: () => Promise<unknown>, only: (socket: net.Socket) => boolean = () => true): Promise<number> {
  const socket = net.Socket.prototype as unknown as { _writeGeneric: (this: net.Socket, ...args: unknown[]) => unknown };
  const original = socket._writeGeneric;
  let writes = 0;
  socket._writeGeneric = function (this: net.Socket, ...args: unknown[]) {
    if (only(this)) writes += 1;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    socket._writeGeneric = original;
  }
  return writes;
}
