import t from 'tap';
import { fixture, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

t.test('a SIGTERM while a reload starts its new workers says the reload was cut short, and exits 0', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '1', fixture('slow-start.js').pathname], {
    LISTEN_DELAY_MS: '2000',
  });
  launcher.child.kill('SIGHUP');
  await waitFor(() => launcher.stderr().includes('reloading workers'), 5_000);
  launcher.child.kill('SIGTERM');
  const { code } = await launcher.exited;
  t.equal(code, 0, 'the launcher exits 0');
  t.match(launcher.stderr(), 'socketnaut: reload cut short by the shutdown');
  t.notMatch(launcher.stderr(), /keep serving/, 'no message says that old workers keep serving');
});
