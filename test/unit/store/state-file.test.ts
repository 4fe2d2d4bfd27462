import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeState, encodeState } from '../../../src/store/state-file.js';
import { emptyState, type StateData } from '../../../src/store/state.js';

const sha = (t: string) => createHash('sha256').update(t).digest('hex');

describe('state file format', () => {
  const state = (): StateData => ({ ...emptyState(), generation: 7, writtenAt: '2026-11-01T10:00:00.000Z' });

  it('is pretty JSON with version and generation first and a checksum of the bytes before it last', () => {
    const body = '{\n "version": 1,\n "generation": 7,\n "writtenAt": "2026-11-01T10:00:00.000Z",\n "services": {},\n "events": [],\n "nextEventSeq": 1,\n "sources": {},\n "instances": {},\n "images": {}\n}';
    assert.equal(encodeState(state()), `${body.slice(0, -2)},\n "checksum": "sha256:${sha(body)}"\n}`);
    // Anyone can still read it as the state.
    assert.deepEqual(JSON.parse(encodeState(state())), { ...state(), checksum: `sha256:${sha(body)}` });
  });

  it('reads back what it wrote, without the checksum', () => {
    assert.deepEqual(decodeState(encodeState(state())), { ok: true, data: state(), checksummed: true });
  });

  it('ignores a checksum member in the data it is given', () => {
    const withOld = { ...state(), checksum: 'sha256:0' } as StateData;
    assert.equal(encodeState(withOld), encodeState(state()));
  });

  it('accepts a file from before checksums', () => {
    assert.deepEqual(decodeState(JSON.stringify(emptyState(), null, 1)), { ok: true, data: emptyState(), checksummed: false });
  });

  it('names each kind of damage', () => {
    const good = encodeState(state());
    const flipped = good.replace('"nextEventSeq": 1', '"nextEventSeq": 2');
    const stored = sha(`${good.slice(0, good.indexOf(',\n "checksum"'))}\n}`).slice(0, 12);
    const content = sha(`${flipped.slice(0, flipped.indexOf(',\n "checksum"'))}\n}`).slice(0, 12);
    const cases: Array<[string, string, string]> = [
      ['truncated', good.slice(0, 40), 'not valid JSON (Unterminated string in JSON at position 40)'],
      ['garbage', 'garbage', 'not valid JSON (Unexpected token \'g\', "garbage" is not valid JSON)'],
      ['empty', '', 'not valid JSON (Unexpected end of JSON input)'],
      ['a changed byte', flipped, `not what carte wrote (checksum mismatch: stored sha256:${stored}…, content sha256:${content}…)`],
      ['a newer version', encodeState({ ...state(), version: 2 }), 'version 2, this carte reads version 1'],
      ['no version', '{"services": {}}', 'version undefined, this carte reads version 1'],
      ['not an object', '[1]', 'not a carte state (not a JSON object)'],
      ['no services', '{"version": 1, "events": []}', 'not a carte state (no "services" object)'],
      ['no events', JSON.stringify({ ...emptyState(), events: null }), 'not a carte state (no "events" list)'],
    ];
    for (const [name, text, reason] of cases) assert.deepEqual(decodeState(text), { ok: false, reason }, name);
  });
});
