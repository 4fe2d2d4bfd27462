// Secret values read from files and standard input are bounded while they are
// read: an endless source (/dev/zero, a pipe that never closes) is refused at
// the limit instead of filling the server's memory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readAtMost, readValues, SECRET_MAX_BYTES } from '../../../src/cli/commands/secrets.js';
import { tempDir } from '../../helpers/paths.js';

describe('cli: secret values', () => {
  it('refuses /dev/zero after reading just past the limit', () => {
    assert.throws(() => readValues({ fromFile: ['k=/dev/zero'] }), { message: '/dev/zero holds more than 1Mi; a secret holds at most 1Mi' });
  });

  it('takes a file of exactly the limit, and refuses one byte more', () => {
    const dir = tempDir('carte-secret-');
    try {
      fs.writeFileSync(path.join(dir, 'ok'), Buffer.alloc(SECRET_MAX_BYTES, 1));
      fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(SECRET_MAX_BYTES + 1, 1));
      assert.equal(readValues({ fromFile: [`k=${path.join(dir, 'ok')}`] }).k!.length, SECRET_MAX_BYTES);
      assert.throws(() => readValues({ fromFile: [`k=${path.join(dir, 'big')}`] }), /holds more than 1Mi/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a descriptor to its end', () => {
    const dir = tempDir('carte-secret-');
    try {
      fs.writeFileSync(path.join(dir, 'v'), 's3cret');
      const fd = fs.openSync(path.join(dir, 'v'), 'r');
      try {
        assert.equal(readAtMost(fd, 100).toString(), 's3cret');
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
