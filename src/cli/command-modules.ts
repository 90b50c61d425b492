// Every command's implementation, which main.ts imports once a command runs. One module, so the
// bundle has one lazily loaded part for all of them: a part per command split the code they
// share with the library into as many chunks, and `import('xencall')` loaded each of them.
export { runTable } from './table.js';
export { runDemo } from './demo.js';
export { runDomains, runInfo } from './commands.js';
export { runDoctor } from './doctor.js';
export { runCall } from './raw-call.js';
export { runMigrate, runRestore, runSave } from './save-restore-migrate.js';
export { runSaveRestore } from './saverestore.js';
