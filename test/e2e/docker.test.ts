/** The Docker end-to-end suite (test/support/docker-suite.ts) with compose v1: Debian 11/12's docker-compose 1.29, every case. */
import { dockerSuite } from '../support/docker-suite.js';

dockerSuite({ compose: 'v1', core: false });
