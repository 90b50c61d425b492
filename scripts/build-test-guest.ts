// Builds the test guest (xencall/testing's bootTestGuest image) and prints its path. The real-Xen
// suite runs this on the host, where binutils are, and hands the path to dom0, which has none.
//
//   node --import tsx scripts/build-test-guest.ts [CACHE_DIR]

import { buildTestGuestImage } from '../src/testing/index.js';

const r = await buildTestGuestImage({ cacheDir: process.argv[2] });
process.stdout.write(`${r.path}\n`);
