import t from 'tap';
import { observeFor, startChildProxy, summary } from './helpers.ts';

// The documented restart backoff for a worker that keeps failing to start.
const BASE_MS = 100;
const FACTOR = 1.5;
const CAP_MS = 15_000;
const OBSERVATION_MS = 20_000;
const MAIN_THREAD_CPU_LIMIT = 0.1;
// The whole process also pays for each attempt's thread start-up (module loading, about 100-200 ms of
// CPU each); that may not reach a spinning restart loop's share either.
const PROCESS_CPU_LIMIT = 0.2;

t.test('a module that throws on import is restarted with a growing, capped delay, at little CPU cost', async (t) => {
  const proxy = await startChildProxy(t, {
    app: 'throws-on-import.js',
    workerCount: 1,
    expectFailure: true,
  });
  const before = await proxy.snapshot();
  // An observation window, not a sleep: what is under test is how often restarts happen over a fixed time.
  await observeFor(OBSERVATION_MS);
  const after = await proxy.snapshot();

  const exits = proxy.events.filter((event) => event.event === 'worker-exit');
  const errors = proxy.events.filter((event) => event.event === 'error');
  // The restart delay proper: from one worker's exit to the start of the next.
  const restartDelays = exits.slice(1).map((exit, i) => (exit.startedAt as number) - exits[i]!.at);
  const exitGaps = exits.slice(1).map((exit, i) => exit.at - exits[i]!.at);
  const expected = restartDelays.map((_, i) => Math.min(BASE_MS * FACTOR ** i, CAP_MS));
  const wall = after.at - before.at;
  const processCpu = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1000;
  const mainCpu =
    (after.mainThreadCpu.user + after.mainThreadCpu.system - before.mainThreadCpu.user - before.mainThreadCpu.system) /
    1000;

  t.comment(`restart delays (exit to next start), ms: ${restartDelays.map((ms) => ms.toFixed(0)).join(', ')}`);
  t.comment(`expected delays, ms:                   ${expected.map((ms) => ms.toFixed(0)).join(', ')}`);
  t.comment(`gaps between 'worker-exit' events, ms:  ${exitGaps.map((ms) => ms.toFixed(0)).join(', ')}`);
  t.comment(`start to failure, ms: ${summary(exits.map((exit) => exit.at - (exit.startedAt as number)))}`);
  t.comment(
    `over ${(wall / 1000).toFixed(1)} s: process CPU ${processCpu.toFixed(0)} ms (${((100 * processCpu) / wall).toFixed(1)}%), ` +
      `main thread ${mainCpu.toFixed(0)} ms (${((100 * mainCpu) / wall).toFixed(2)}%)`,
  );

  t.equal(errors.length, 1, "the failure is reported once through 'error'");
  t.equal(errors[0]?.code, 'SOCKETNAUT_ERR_WORKER_BOOTSTRAP');
  t.ok(
    exits.every((exit) => exit.readyAt === 0),
    'no worker ever served',
  );
  // 100 ms × 1.5^n reaches about 20 s in total after 11 restarts; a spinning or a fixed-delay restart
  // would make many more, a stuck one fewer.
  t.ok(exits.length >= 8 && exits.length <= 14, `${exits.length} failed starts in ${OBSERVATION_MS / 1000} s`);
  for (const [i, ms] of restartDelays.entries()) {
    const want = expected[i]!;
    t.ok(
      ms >= want - 5 && ms <= want * 1.1 + 50,
      `restart ${i + 1} came after ${ms.toFixed(0)} ms (expected ${want.toFixed(0)})`,
    );
  }
  t.ok(
    restartDelays.every((ms, i) => i === 0 || ms >= restartDelays[i - 1]! - 5),
    'restart delays never shrink',
  );
  // Exit-to-exit gaps also include each attempt's start-up time, which varies with the machine's load.
  const tolerance = 250;
  t.ok(
    exitGaps.every((ms, i) => i === 0 || ms >= exitGaps[i - 1]! - tolerance),
    `gaps between exits never shrink by more than ${tolerance} ms`,
  );
  const half = Math.floor(exitGaps.length / 2);
  t.ok(
    Math.min(...exitGaps.slice(half)) >= Math.max(...exitGaps.slice(0, half)) - tolerance,
    'the later gaps are at least the earlier ones',
  );
  t.ok(
    restartDelays.every((ms) => ms <= CAP_MS * 1.1 + 50),
    `no delay exceeds the ${CAP_MS / 1000} s cap`,
  );
  t.ok(
    mainCpu < MAIN_THREAD_CPU_LIMIT * wall,
    `the main thread used ${((100 * mainCpu) / wall).toFixed(2)}% of the time (limit 10%)`,
  );
  t.ok(
    processCpu < PROCESS_CPU_LIMIT * wall,
    `the whole process used ${((100 * processCpu) / wall).toFixed(1)}% of one core (limit 20%)`,
  );

  const { code } = await proxy.shutdown();
  t.equal(code, 0, 'the proxy shuts down cleanly');
});
