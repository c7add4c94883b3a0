/**
 * Test hook for the fault-injection suite (test/e2e/faults-*.test.ts): when the environment variable
 * `LETTO_UPDATE_FAULT` names a journal step (e.g. `swap`), the process kills itself with SIGKILL right
 * after the journal recorded that step, as the OOM killer or a power cut would stop it. Only the
 * tests set the variable; unset (as in production) this does nothing. Documented in docs/reliability.md.
 * Besides the journal steps, two points inside the swap: `swap:copied` (the temporary copy in webapps
 * is complete and flushed, not yet renamed) and `swap:renamed` (renamed over letto.war, the exploded
 * folder not yet removed); and one inside recovery, `recover:swapped` (the backup is back in webapps,
 * TomEE not yet started, the journal not yet removed); and one in the delta download, `delta:directory`
 * (the remote central directory is in staging with its sidecar, no entry data fetched yet); and one in the database restore,
 * `restore:created` (the database dropped and created again, the dump not yet loaded).
 */
export function injectFault(point: string): void {
  const wanted = process.env.LETTO_UPDATE_FAULT;
  if (wanted && wanted === point) process.kill(process.pid, 'SIGKILL');
}
