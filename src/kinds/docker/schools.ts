/**
 * The schools of a LeTTo Docker server (LeTTo's admin docs: one compose file
 * `docker-compose-<school>.yml` per school, reachable at `https://<server>/letto<school>`) and the URLs
 * the health check asks: `docker.health_url` is one URL or a list, and `{school}` in one stands for
 * each school that is up (`https://localhost/letto{school}/test.jsf`).
 */
import type { DockerConfig } from '../../config/config.js';
import type { HealthTarget as UrlTarget } from '../types.js';
import type { LettoService } from './compose.js';

/** One URL the health check asks, and whom a failure blames (whose `docker logs` the notice carries). */
export interface HealthTarget extends UrlTarget {
  /** The school's services, or every checked service for a URL without `{school}`. */
  blame: LettoService[];
}

/** `docker.health_url` as a list; `""` (or an empty list): only the containers' own health status. */
export function healthUrls(docker: DockerConfig): string[] {
  return (Array.isArray(docker.health_url) ? docker.health_url : [docker.health_url]).filter((u) => u !== '');
}

/** The schools among `services`, sorted. */
export function schoolsOf(services: LettoService[]): string[] {
  return [...new Set(services.map((s) => s.group.school).filter((s): s is string => s !== null))].sort();
}

/**
 * The URLs to ask for `services` (those that should be up): each `docker.health_url`, one per school
 * for a URL naming `{school}` (none when no school is up), in the order of the list.
 */
export function healthTargets(docker: DockerConfig, services: LettoService[]): HealthTarget[] {
  return schoolUrls(docker, schoolsOf(services)).map((t) => ({ ...t, blame: t.school === null ? services : services.filter((s) => s.group.school === t.school) }));
}

/** Each `docker.health_url` in order, a URL naming `{school}` once for each of `schools` (none when there are none). */
export function schoolUrls(docker: DockerConfig, schools: readonly string[]): UrlTarget[] {
  return healthUrls(docker).flatMap((url): UrlTarget[] => (url.includes('{school}') ? schools.map((school) => ({ url: url.replaceAll('{school}', school), school })) : [{ url, school: null }]));
}

/** A service in messages: `lettoserver-b (school b)`, or the service name. */
export function serviceLabel(s: LettoService): string {
  return s.group.school ? `${s.service} (school ${s.group.school})` : s.service;
}

/** A container in messages: `letto-b (school b)`, or its name. */
export function containerLabel(s: LettoService): string {
  return `${s.container?.name ?? s.service}${s.group.school ? ` (school ${s.group.school})` : ''}`;
}
