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
      { op: 'FROM', line: 3, image: 'scratch', stage: 0 },
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
    assert.equal(error('COPY a /a\n'), 'Cartefile:1: the first instruction must be FROM (got COPY)');
    assert.equal(error('FROM scratch\nCOPY ../secret /x\n'), 'Cartefile:2: "../secret" is outside the build context (sources are relative to it)');
    assert.equal(error('FROM scratch\nADD https://example.com/x.tgz /x\n'), 'Cartefile:2: ADD from a URL is not supported (there is no network): download "https://example.com/x.tgz" into the build context');
    assert.equal(error('FROM scratch\nCOPY --from=host bin/node /x\n'), 'Cartefile:2: COPY --from=host needs absolute host paths, got "bin/node"');
    assert.equal(error('FROM scratch\nEXPOSE http\n'), 'Cartefile:2: "http" is not a port (use e.g. 8080 or 53/udp)');
    assert.equal(error('FROM scratch\nFROBNICATE\n'), 'Cartefile:2: unknown instruction FROBNICATE');
    assert.equal(error('# empty\n'), 'Cartefile:1: a Cartefile starts with FROM (scratch, or a local image)');
    assert.equal(error('FROM scratch\n', { NOPE: '1' }), 'Cartefile:1: build argument "NOPE" is not declared with ARG');
  });

  it('parses stages, RUN in both forms, COPY --from a stage or an image, --chown, and ARG before FROM', () => {
    const steps = parse(`ARG BASE=test/busybox:1
FROM $BASE AS build
ARG MODE
ARG LEVEL=3
ENV OUT=/out
RUN busybox mkdir $OUT && echo $MODE > $OUT/a
RUN ["/bin/busybox", "touch", "/out/b"]
FROM build AS again
FROM scratch
COPY --from=build --chown=1000:100 /out/a /a
COPY --from=1 /out/b /b
COPY --from=other/image:2 /x /x
`, { MODE: 'fast' });
    assert.deepEqual(steps, [
      { op: 'FROM', line: 2, image: 'test/busybox:1', stage: 0, name: 'build' },
      { op: 'ENV', line: 5, vars: [['OUT', '/out']] },
      { op: 'RUN', line: 6, argv: ['/bin/sh', '-c', 'busybox mkdir $OUT && echo $MODE > $OUT/a'], args: [['MODE', 'fast'], ['LEVEL', '3']], text: 'RUN busybox mkdir $OUT && echo $MODE > $OUT/a' },
      { op: 'RUN', line: 7, argv: ['/bin/busybox', 'touch', '/out/b'], args: [['MODE', 'fast'], ['LEVEL', '3']], text: 'RUN ["/bin/busybox", "touch", "/out/b"]' },
      { op: 'FROM', line: 8, image: 'build', stage: 1, name: 'again', fromStage: 0 },
      { op: 'FROM', line: 9, image: 'scratch', stage: 2 },
      { op: 'COPY', line: 10, source: 'stage', sources: ['/out/a'], dest: '/a', extract: false, text: 'COPY --from=build --chown=1000:100 /out/a /a', fromStage: 0, chown: '1000:100' },
      { op: 'COPY', line: 11, source: 'stage', sources: ['/out/b'], dest: '/b', extract: false, text: 'COPY --from=1 /out/b /b', fromStage: 1 },
      { op: 'COPY', line: 12, source: 'image', sources: ['/x'], dest: '/x', extract: false, text: 'COPY --from=other/image:2 /x /x', fromImage: 'other/image:2' },
    ]);
  });

  it('refuses what Dockerfiles have and carte does not, with FILE:LINE: INSTRUCTION is not supported: what to do', () => {
    assert.equal(error('FROM scratch\nHEALTHCHECK CMD true\n'), 'Cartefile:2: HEALTHCHECK is not supported: put the health check in the manifest (spec.health)');
    assert.equal(error('FROM scratch\nVOLUME /data\n'), 'Cartefile:2: VOLUME is not supported: declare volumes in the manifest (spec.volumes)');
    assert.equal(error('FROM scratch\nONBUILD RUN x\n'), 'Cartefile:2: ONBUILD is not supported: write the instructions into the Cartefile that builds on this image');
    assert.equal(error('FROM scratch\nSHELL ["/bin/bash", "-c"]\n'), 'Cartefile:2: SHELL is not supported: RUN uses /bin/sh -c; use the exec form RUN ["bash", "-c", "..."] for another shell');
    assert.equal(error('FROM scratch\nSTOPSIGNAL SIGINT\n'), 'Cartefile:2: STOPSIGNAL is not supported: carte stops instances with SIGTERM, then SIGKILL after the grace period');
    assert.equal(error('FROM scratch\nRUN --mount=type=cache,target=/root/.cache make\n'), 'Cartefile:2: RUN --mount is not supported: copy what the step needs into the build context (COPY) instead');
    assert.equal(error('FROM scratch\nRUN --network=host make\n'), 'Cartefile:2: RUN --network is not supported: give the whole build network access with "carte build --network" (if the server policy allows it)');
    assert.equal(error('FROM scratch\nRUN <<EOF\necho hi\nEOF\n'), 'Cartefile:2: RUN with a heredoc (<<) is not supported: put the text in a file of the build context and COPY it');
    assert.equal(error('FROM scratch\nCOPY --from=1 /a /a\n'), 'Cartefile:2: COPY --from=1: there is no earlier stage 1 (stages count from 0; this is stage 0)');
    assert.equal(error('FROM scratch AS a\nFROM scratch AS a\n'), 'Cartefile:2: stage "a" is already defined on an earlier FROM');
    assert.equal(error('FROM --platform=linux/arm64 scratch\n'), 'Cartefile:1: FROM --platform is not supported: carte builds for this machine\'s platform only');
    assert.equal(error('FROM scratch\nADD --from=a /x /x\n'), 'Cartefile:2: ADD --from is not supported: ADD takes files of the build context; use COPY --from');
    assert.equal(error('FROM scratch\nCOPY --chown=a:b:c x /x\n'), 'Cartefile:2: COPY --chown=a:b:c: give user[:group], e.g. --chown=1000:1000');
    assert.equal(error('FROM scratch\nRUN\n'), 'Cartefile:2: RUN needs a command, e.g. RUN mkdir /data');
  });
});
