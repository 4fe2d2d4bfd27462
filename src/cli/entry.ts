// The process entry point that bin/carte runs.
import { main } from './main.js';

process.exitCode = await main(process.argv);
