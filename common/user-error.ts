/** A user-facing error: the CLI prints its message as one line, without a stack. */
export class UserError extends Error {
  override name = 'UserError';
}
