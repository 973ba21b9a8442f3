/** Whether a value is a promise or any other thenable (what `await` and Promise.resolve would follow). */
export const isThenable = (value: unknown): value is PromiseLike<unknown> => typeof (value as PromiseLike<unknown> | null)?.then === 'function';
