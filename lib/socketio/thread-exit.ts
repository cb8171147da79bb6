// A thread that ends tells the others at once that its adapters are gone, rather than leaving them to
// wait out their heartbeat timeout: its 'exit' listeners run when it returns, throws or calls
// process.exit(), as socketnaut's workers do when they retire. (worker.terminate() runs none: then the
// heartbeat timeout tells.)

interface Closable {
  close(): void;
}

const open = new Set<Closable>();
let listening = false;

export function closeOnExit(adapter: Closable): void {
  open.add(adapter);
  if (listening) return;
  listening = true;
  process.once('exit', () => {
    for (const each of open) each.close();
  });
}

export function forgetOnExit(adapter: Closable): void {
  open.delete(adapter);
}
