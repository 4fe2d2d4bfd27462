import assert from 'node:assert/strict';
import { parseCartefile, substitute } from '../../../src/drivers/linux/images/cartefile.js';

const parse = (text: string, args?: Record<string, string>) => parseCartefile(text, 'Cartefile', args);
const error = (text: string, args?: Record<string, string>) => {
  try {
    parse(text, args);
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

describe('Cartefile parsing', () => {
  it('parses every supported instruction with its line', () => {
    const steps = parse(`# a comment
ARG VERSION=1.0
FROM scratch
COPY --from=host /usr/bin/node /usr/bin/node
COPY app/ /app/
ADD assets.tar /srv
ENV NODE_ENV=production PORT=8080
ENV GREETING hello world
WORKDIR /app
EXPOSE 8080 53/udp
USER 1000:1000
LABEL version=$VERSION description="a \\"quoted\\" text"
ENTRYPOINT ["node"]
CMD node server.js
`);
    assert.deepEqual(steps, [
      { op: 'FROM', line: 3, image: 'scratch' },
      { op: 'COPY', line: 4, source: 'host', sources: ['/usr/bin/node'], dest: '/usr/bin/node', extract: false, text: 'COPY --from=host /usr/bin/node /usr/bin/node' },
      { op: 'COPY', line: 5, source: 'context', sources: ['app/'], dest: '/app/', extract: false, text: 'COPY app/ /app/' },
      { op: 'COPY', line: 6, source: 'context', sources: ['assets.tar'], dest: '/srv', extract: true, text: 'ADD assets.tar /srv' },
      { op: 'ENV', line: 7, vars: [['NODE_ENV', 'production'], ['PORT', '8080']] },
      { op: 'ENV', line: 8, vars: [['GREETING', 'hello world']] },
      { op: 'WORKDIR', line: 9, path: '/app' },
      { op: 'EXPOSE', line: 10, ports: ['8080', '53/udp'] },
      { op: 'USER', line: 11, user: '1000:1000' },
      { op: 'LABEL', line: 12, labels: [['version', '1.0'], ['description', 'a "quoted" text']] },
      { op: 'ENTRYPOINT', line: 13, argv: ['node'] },
      { op: 'CMD', line: 14, argv: ['/bin/sh', '-c', 'node server.js'] },
    ]);
  });

  it('joins continued lines and substitutes ARG and ENV in order, build args first', () => {
    const steps = parse('ARG DIR=/srv\nFROM base:1\nENV APP=$DIR/app\nCOPY a \\\n  b ${APP}/\nWORKDIR ${MISSING:-/fallback}\n', { DIR: '/opt' });
    assert.deepEqual(steps.slice(1).map((s) => ('dest' in s ? s.dest : 'vars' in s ? s.vars : 'path' in s ? s.path : s)), [[['APP', '/opt/app']], '/opt/app/', '/fallback']);
    assert.equal(substitute('\\$HOME and $HOME', new Map([['HOME', '/root']])), '$HOME and /root');
  });

  it('refuses what it cannot build, naming the line and what to do instead', () => {
    assert.equal(error('FROM scratch\nRUN apt-get install x\n'), 'Cartefile:2: RUN is not supported: carte builds never execute commands; copy prepared files in, or bring a program with COPY --from=host');
    assert.equal(error('COPY a /a\n'), 'Cartefile:1: the first instruction must be FROM (got COPY)');
    assert.equal(error('FROM scratch\nCOPY ../secret /x\n'), 'Cartefile:2: "../secret" is outside the build context (sources are relative to it)');
    assert.equal(error('FROM scratch\nADD https://example.com/x.tgz /x\n'), 'Cartefile:2: ADD from a URL is not supported (there is no network): download "https://example.com/x.tgz" into the build context');
    assert.equal(error('FROM scratch\nCOPY --from=builder /a /a\n'), 'Cartefile:2: COPY --from=builder is not supported (only --from=host, to copy a program from this machine)');
    assert.equal(error('FROM scratch\nCOPY --from=host bin/node /x\n'), 'Cartefile:2: COPY --from=host needs absolute host paths, got "bin/node"');
    assert.equal(error('FROM scratch\nEXPOSE http\n'), 'Cartefile:2: "http" is not a port (use e.g. 8080 or 53/udp)');
    assert.equal(error('FROM scratch\nFROM scratch\n'), 'Cartefile:2: only one FROM is supported (no multi-stage builds)');
    assert.equal(error('FROM scratch\nFROBNICATE\n'), 'Cartefile:2: unknown instruction FROBNICATE');
    assert.equal(error('# empty\n'), 'Cartefile:1: a Cartefile starts with FROM (scratch, or a local image)');
    assert.equal(error('FROM scratch\n', { NOPE: '1' }), 'Cartefile:1: build argument "NOPE" is not declared with ARG');
  });
});
