import { ExitCode } from '../errors.js';
import { sendTestNotice } from '../report/notify.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `test-notify`: one test notification by every configured way; exit 0 sent, 1 failed. */
export function testNotifyCommand(run: CommandRun): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const { tried, failures } = await sendTestNotice(ctx);
    out.json({ tried, failures });
    if (tried.length === 0) {
      out.error('[notify] names no recipient: nothing to send.', 'Set notify.email_to and/or notify.webhook_url (docs/configuration.md).');
      return ExitCode.failed;
    }
    if (failures.length > 0) {
      out.error(failures.join('; ') + '.', 'Check notify.smtp_url, notify.smtp_user and the SMTP password (notify.smtp_password_file or LETTO_UPDATE_SMTP_PASSWORD), or notify.webhook_url.');
      return ExitCode.failed;
    }
    out.line(`Sent: ${tried.join('; ')}.`);
    return ExitCode.ok;
  }, { local: true });
}
