import { describeDriverContract } from '../../helpers/driver-contract.js';
import { MemoryDriver } from '../../helpers/memory-driver.js';

const driver = new MemoryDriver();
describeDriverContract('in-memory driver', () => ({
  driver,
  spec: (name) => ({ name, service: 'contract', source: 'cli', labels: {}, image: 'test/x:1', spec: { command: null, args: null, env: {}, workingDir: null, user: null, resources: { cpuMillis: null, memoryBytes: null, pids: null }, volumes: [], ports: [] } }),
  exitThree: ['exit', '3'],
}));
