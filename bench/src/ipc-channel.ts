/**
 * @module Request/response over a child process's IPC channel: the bench asks its children
 * (gateways, baselines, load generators) for their CPU time, traces and results this way, so no
 * measurement rides on the HTTP paths being measured. Children are spawned with
 * `serialization: "advanced"`, so typed arrays and bigints cross as they are.
 */
import type { ChildProcess } from "node:child_process";

/** A request: `type` picks the child's handler; the rest is its argument. */
export interface IpcRequest {
  readonly type: string;
  readonly [key: string]: unknown;
}

interface Envelope {
  readonly ipcId: number;
  readonly request: IpcRequest;
}

interface Reply {
  readonly ipcReplyTo: number;
  readonly result?: unknown;
  readonly error?: string;
}

/** The parent's end. */
export interface IpcClient {
  /** Sends `request` and resolves with the child handler's result. */
  request<T>(request: IpcRequest): Promise<T>;
}

/** Wraps a spawned child's IPC channel; pending requests fail when the child exits. */
export function createIpcClient(child: ChildProcess): IpcClient {
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on("message", (message: unknown) => {
    const reply = message as Partial<Reply>;
    if (typeof reply.ipcReplyTo !== "number") return;
    const waiter = pending.get(reply.ipcReplyTo);
    if (waiter === undefined) return;
    pending.delete(reply.ipcReplyTo);
    if (reply.error !== undefined) waiter.reject(new Error(reply.error));
    else waiter.resolve(reply.result);
  });
  child.once("exit", (code, signal) => {
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`child exited (code ${code}, signal ${signal}) before replying`));
    }
    pending.clear();
  });
  return {
    request<T>(request: IpcRequest): Promise<T> {
      const ipcId = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(ipcId, { resolve: resolve as (v: unknown) => void, reject });
        const envelope: Envelope = { ipcId, request };
        child.send(envelope, (error) => {
          if (error !== null && pending.delete(ipcId)) reject(error);
        });
      });
    },
  };
}

/** A child's handler for one request type. */
export type IpcHandler = (request: IpcRequest) => unknown;

/**
 * The child's end: answers requests with `handlers[request.type]`. Handlers added later (by
 * another module of the same child) go into the same table.
 */
export function serveIpc(handlers: Map<string, IpcHandler>): void {
  const send = process.send?.bind(process);
  if (send === undefined)
    throw new Error("this module must run in a child spawned with an IPC channel");
  process.on("message", (message: unknown) => {
    const envelope = message as Partial<Envelope>;
    if (typeof envelope.ipcId !== "number" || envelope.request === undefined) return;
    const { ipcId, request } = envelope;
    const handler = handlers.get(request.type);
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`no IPC handler for "${request.type}"`);
        return handler(request);
      })
      .then(
        (result) => send({ ipcReplyTo: ipcId, result } satisfies Reply),
        (error: unknown) =>
          send({
            ipcReplyTo: ipcId,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          } satisfies Reply),
      );
  });
}
