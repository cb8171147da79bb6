/**
 * Called in the default branch of a switch over a union, such as the messages of one side: a member
 * of the union without its own case makes the build fail here. At run time it does nothing.
 */
export function exhaustive(_unhandled: never): void {}
