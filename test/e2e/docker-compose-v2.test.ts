/**
 * The Docker end-to-end suite (test/support/docker-suite.ts) with compose v2 (`docker compose`, the
 * plugin found in DOCKER_CONFIG): the core cases. Debian 12 ships only v1; .ci/run unpacks Debian 13's
 * v2 binary into a cache with fixtures/compose-v2.sh (LETTO_TEST_COMPOSE_V2 names it).
 */
import { dockerSuite } from '../support/docker-suite.js';

dockerSuite({ compose: 'v2', core: true });
