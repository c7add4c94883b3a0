/**
 * The config's one schema (zod): every key, its type, default and the message for a wrong value. The
 * file (TOML), the environment and the flags are merged by src/config/config.ts; see docs/configuration.md.
 */
import { z } from 'zod';
import { DURATION_FORMS, parseDuration } from './duration.js';
import { metricsSchema } from './metrics-schema.js';

/** Where the config is read from when neither `--config` nor `LETTO_UPDATE_CONFIG` names a file. */
export const DEFAULT_CONFIG_PATH = '/etc/letto-update/config.toml';

const channel = z.enum(['stable', 'daily'], {
  errorMap: () => ({ message: 'must be "stable" or "daily"' }),
});
const path = z.string().min(1, 'must not be empty');
/** A string that {@link parseDuration} reads becomes its seconds; anything else is left for the number check to refuse. */
const asDuration = (value: unknown): unknown => (typeof value === 'string' ? (parseDuration(value) ?? value) : value);
const durationNumber = () => z.number({ invalid_type_error: `must be ${DURATION_FORMS}` });
/** Whole seconds, written as a number (`300`) or a duration (`"5m"`). */
const seconds = z.preprocess(asDuration, durationNumber().int('must be a whole number of seconds').positive('must be greater than 0'));
/** Seconds that may have a fraction (`0.5`, `"500ms"`), for network timeouts and retry waits. */
const duration = z.preprocess(asDuration, durationNumber().positive('must be greater than 0 seconds'));

/** A list of strings; a single string (or an environment variable) may list them separated by commas or spaces. */
const stringList = z.preprocess(
  (value) => (typeof value === 'string' ? value.split(/[\s,;]+/).filter(Boolean) : value),
  z.array(z.string().min(1, 'must not be empty')),
);

/** `[notify]`: who is told about updates, failed updates, rollbacks and watchdog restarts (see src/report/notify.ts). */
const notifySchema = z
  .object({
    email_to: stringList.default([]),
    email_from: z.string().default(''),
    smtp_url: z
      .string()
      .refine((url) => url === '' || /^smtps?:\/\/[^/]+/.test(url), 'must be empty (local sendmail) or a URL like smtp://mail.example.org:587 or smtps://mail.example.org')
      .default(''),
    smtp_user: z.string().default(''),
    smtp_password_file: z.string().default(''),
    sendmail: path.default('/usr/sbin/sendmail'),
    webhook_url: z
      .string()
      .refine((url) => url === '' || /^https?:\/\/[^/]+/.test(url), 'must be empty or an http(s) URL')
      .default(''),
    when: z.enum(['change', 'error', 'always'], { errorMap: () => ({ message: 'must be "change", "error" or "always"' }) }).default('change'),
  })
  .strict();

/** `[watchdog]`: seconds between checks, failed checks in a row before a restart, seconds after a restart without checks counting. */
const watchdogSchema = z
  .object({
    interval: seconds.default(60),
    failures: z.number().int('must be a whole number').min(1, 'must be at least 1').default(3),
    grace: seconds.default(300),
  })
  .strict();

/** A health URL of a Docker install; `{school}` stands for each school (`https://localhost/letto{school}/test.jsf`). */
const dockerHealthUrl = z
  .string()
  .refine((url) => URL.canParse(url.replaceAll('{school}', 'school')), 'must be a URL like https://localhost/letto/test.jsf or https://localhost/letto{school}/test.jsf');

/**
 * `[docker]`: a Docker install (LeTTo's images, brought up by compose). Its presence makes the install
 * a Docker one (see src/kinds/); without it, a TomEE install.
 */
export const dockerSchema = z
  .object({
    compose_dirs: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(/[\s,;]+/).filter(Boolean) : value),
      z.array(path, { invalid_type_error: 'must be a list of folders like ["/opt/letto/docker/compose/letto"]' }).min(1, 'must name at least one compose folder'),
    ),
    image_prefix: z.string().min(1, 'must not be empty (e.g. "lettohub/")').default('lettohub/'),
    registry: z
      .string()
      .regex(/^$|^[A-Za-z0-9.-]+(:\d+)?$/, 'must be empty (Docker Hub) or a registry host like "localhost:5000", without https:// or a path')
      .default(''),
    revision_tag: z.string().regex(/^[A-Za-z0-9_.-]*\{revision\}[A-Za-z0-9_.-]*$/, 'must be a tag containing {revision}, like "rev{revision}"').default('rev{revision}'),
    health_url: z
      .preprocess(
        // from the environment: several URLs separated by spaces
        (value) => (typeof value === 'string' && /\s/.test(value.trim()) ? value.split(/\s+/).filter(Boolean) : value),
        z.union([dockerHealthUrl.or(z.literal('')), z.array(dockerHealthUrl, { invalid_type_error: 'must be a URL or a list of URLs' })]),
      )
      .default('https://localhost/letto/test.jsf'),
    health_timeout: seconds.default(300),
    compose: z.string().default(''),
    command: path.default('docker'),
  })
  .strict();

/**
 * `[database]`: LeTTo's MySQL/MariaDB databases, dumped before every update and restored when an automatic
 * rollback needs it (src/database/, docs/database.md). Without it, no dump is made.
 */
export const databaseSchema = z
  .object({
    // no default here: TomEE ["letto"], Docker every letto_* plus lettolti (src/database/steps.ts, databaseNames)
    databases: stringList.pipe(z.array(z.string().regex(/^[A-Za-z0-9_$-]+\*?$/, 'must be database names like "letto" (Docker: "letto_*" for every school)')).min(1, 'must name at least one database')).optional(),
    socket: z.string().default(''),
    user: z.string().default('root'),
    option_file: z.string().default(''),
    dump_command: z.string().default(''),
    client_command: z.string().default(''),
    container: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a container name like "letto-mysql"').default('letto-mysql'),
    password_variable: z.string().regex(/^([A-Za-z_][A-Za-z0-9_]*)?$/, 'must be the name of an environment variable like "MYSQL_ROOT_PASSWORD" (or "" for none)').default('MYSQL_ROOT_PASSWORD'),
    timeout: seconds.default(3600),
  })
  .strict();

/**
 * The one schema of the config file: types, defaults (a standard LeTTo install) and messages.
 * Every section and key is documented in docs/configuration.md.
 */
export const configSchema = z
  .object({
    server: z
      .object({
        url: z.string().url('must be a URL like https://letto.at/download/letto/').default('https://letto.at/download/letto/'),
        user: z.string().default(''),
        password_file: z.string().default('/etc/letto-update/password'),
        channel: channel.default('stable'),
        ca_file: z.string().default(''),
        retries: z.number().int('must be a whole number').min(0, 'must be 0 or more').max(100, 'must be at most 100').default(5),
        retry_wait: duration.default(2),
        retry_max_wait: duration.default(60),
        connect_timeout: duration.default(30),
        idle_timeout: duration.default(60),
        interactive_timeout: duration.default(15),
        allow_plain_http: z.boolean({ invalid_type_error: 'must be true or false' }).default(false),
        delta: z.boolean({ invalid_type_error: 'must be true or false' }).default(true),
      })
      .strict()
      .default({}),
    tomee: z
      .object({
        webapps: path.default('/opt/tomee/webapps'),
        war_name: z
          .string()
          .regex(/^[^/]+\.war$/, 'must be a file name ending in .war, without a folder')
          .default('letto.war'),
        user: z.string().default(''),
        start: path.default('/opt/letto/start.sh'),
        stop: path.default('/opt/letto/stop.sh'),
        status: path.default('/opt/letto/status.sh'),
        health_url: z.string().url('must be a URL like https://localhost/letto/test.jsf').default('https://localhost/letto/test.jsf'),
        health_timeout: seconds.default(300),
        restart: z.string().default(''),
        status_timeout: seconds.default(30),
        stop_timeout: seconds.default(180),
        start_timeout: seconds.default(180),
        restart_timeout: seconds.default(360),
      })
      .strict()
      .default({}),
    paths: z
      .object({
        staging: path.default('/opt/letto/war'),
        backups: path.default('/opt/letto/backup/war'),
        keep: z.number().int('must be a whole number').min(1, 'must be at least 1').default(5),
        state: path.default('/var/lib/letto-update'),
        backup_lock: path.default('/sicherung/sqlsicherungaktiv'),
        free_space_margin: z.number().int('must be a whole number of MiB').min(0, 'must be 0 or more').default(100),
      })
      .strict()
      .default({}),
    notify: notifySchema.default({}),
    watchdog: watchdogSchema.default({}),
    metrics: metricsSchema.default({}),
    docker: dockerSchema.optional(),
    database: databaseSchema.optional(),
  })
  .strict();

/** The validated config: every key present, defaults filled in. */
export type Config = z.infer<typeof configSchema>;
/** The validated `[docker]` section. */
export type DockerConfig = z.infer<typeof dockerSchema>;
/** The validated `[database]` section. */
export type DatabaseConfig = z.infer<typeof databaseSchema>;
/** Values given on the command line; they win over file and environment. */
export interface ConfigFlags {
  channel?: 'stable' | 'daily';
}

/** A loaded config plus where it came from (for messages). */
export interface LoadedConfig {
  config: Config;
  /** The file read, or null when the default path did not exist and defaults were used. */
  source: string | null;
}
