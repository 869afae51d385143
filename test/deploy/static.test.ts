/**
 * Static checks of the deployment files (Dockerfile, .dockerignore, docker-compose.yml, k8s/):
 * offline, no Docker engine, no cluster. Kubernetes objects are validated against the API
 * schemas shipped by `kubernetes-models` (and `@kubernetes-models/keda` for KEDA's CRDs); the
 * rest are structural checks of what inferq relies on (probes, grace periods, the commands the
 * image runs, the Redis keys KEDA watches, settings that src/shared/config.ts accepts).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
// One model file each: the package indexes load every schema of a group (seconds).
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet, type IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import {
  HorizontalPodAutoscaler,
  type IHorizontalPodAutoscaler,
} from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import {
  PodDisruptionBudget,
  type IPodDisruptionBudget,
} from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IIoK8sApiCoreV1Container } from 'kubernetes-models/v1/Container';
import type { IIoK8sApiCoreV1PodSpec } from 'kubernetes-models/v1/PodSpec';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import {
  ScaledObject,
  type IScaledObject,
} from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import {
  TriggerAuthentication,
  type ITriggerAuthentication,
} from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { program } from '../../src/cli/program.js';
import { ConfigSchema, loadConfig } from '../../src/shared/config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

type Doc = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;
type Container = IIoK8sApiCoreV1Container;

// ---------------------------------------------------------------------------------------------
// The server commands `node bin/inferq.js <command>` understands, read from the CLI's parser.
// ---------------------------------------------------------------------------------------------
const cliCommands = program().commands.map((c) => c.name());
const CLI_COMMANDS = ['api', 'worker', 'start'].filter((c) => cliCommands.includes(c));

/** Settings that the deployment files may set beyond src/shared/config.ts (announced ones). */
const EXTRA_SETTINGS = new Set(['WORKER_METRICS_PORT', 'NODE_ENV']);
const KNOWN_SETTINGS = new Set([...Object.keys(ConfigSchema.shape), ...EXTRA_SETTINGS]);

/** Validates an environment map the way the app would at start-up (throws ConfigError). */
function assertValidConfig(env: Record<string, string>, where: string): void {
  for (const name of Object.keys(env)) {
    expect(KNOWN_SETTINGS.has(name), `${where}: ${name} is not a setting of inferq`).toBe(true);
  }
  expect(() => loadConfig(env), where).not.toThrow();
}

function seconds(duration: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(duration);
  if (!m) throw new Error(`unsupported duration ${duration}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------
interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined, ARG defaults applied to FROM. */
function parseDockerfile(src: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of src.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // comment inside a continued instruction
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const globalArgs = new Map<string, string>();
  const out: Instruction[] = [];
  let stage = -1;
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/s.exec(l);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    let args = m[2]!.trim();
    if (op === 'ARG' && stage === -1) {
      const [name, value = ''] = args.split('=', 2);
      globalArgs.set(name!.trim(), value.trim());
    }
    if (op === 'FROM') {
      stage++;
      args = args.replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_s, a?: string, b?: string) => globalArgs.get((a ?? b)!) ?? '',
      );
    }
    out.push({ op, args, stage });
  }
  return out;
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const finalStage = Math.max(...dockerfile.map((i) => i.stage));
const inFinal = (op: string) => dockerfile.filter((i) => i.op === op && i.stage === finalStage);
const jsonArgs = (i: Instruction | undefined): unknown => (i ? JSON.parse(i.args) : undefined);

describe('Dockerfile', () => {
  it('is multi-stage and runs on node:20-bookworm-slim', () => {
    const froms = dockerfile.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms.at(-1)!.args).toMatch(/^node:20-bookworm-slim(\s|$)/);
    // Every stage is named; the final one copies node_modules from an earlier one.
    for (const f of froms.slice(0, -1)) expect(f.args).toMatch(/\sAS\s+\w+/i);
    const depStage = /\sAS\s+(\w+)/i.exec(froms[0]!.args)![1]!;
    expect(
      inFinal('COPY').some(
        (c) => c.args.includes(`--from=${depStage}`) && c.args.includes('node_modules'),
      ),
    ).toBe(true);
  });

  it('installs production dependencies only, without onnxruntime-node downloading CUDA', () => {
    const runs = dockerfile.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r) && r.includes('--omit=dev'))).toBe(true);
    expect(runs.some((r) => /\bnpm (i|install)\b/.test(r))).toBe(false);
    const installStage = dockerfile.find((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))!.stage;
    const env = dockerfile
      .filter((i) => i.op === 'ENV' && i.stage === installStage)
      .map((i) => i.args)
      .join(' ');
    expect(env).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
  });

  it('ships what bin/inferq.js needs and nothing built elsewhere', () => {
    const copied = inFinal('COPY')
      .filter((c) => !c.args.includes('--from='))
      .flatMap((c) =>
        c.args
          .split(/\s+/)
          .filter((a) => !a.startsWith('--'))
          .slice(0, -1),
      );
    for (const need of ['package.json', 'package-lock.json', 'bin', 'models']) {
      expect(copied, `COPY ${need}`).toContain(need);
    }
    for (const path of copied) expect(existsSync(join(root, path)), path).toBe(true);
    // Compiled JavaScript only, made by a stage of this Dockerfile: no sources, no host dist/.
    expect(copied).not.toContain('src');
    expect(copied).not.toContain('dist');
    const fromBuild = inFinal('COPY').find((c) => /\s\/app\/dist\s/.test(` ${c.args} `));
    const buildStage = /--from=(\w+)/.exec(fromBuild?.args ?? '')?.[1];
    expect(buildStage, 'COPY --from=<stage> /app/dist').toBeDefined();
    const stageIndex = dockerfile.find(
      (i) => i.op === 'FROM' && new RegExp(`\\sAS\\s+${buildStage}$`, 'i').test(i.args),
    )!.stage;
    const buildRuns = dockerfile.filter((i) => i.op === 'RUN' && i.stage === stageIndex);
    expect(buildRuns.some((r) => /\bnpm run build\b/.test(r.args))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const user = inFinal('USER').at(-1)?.args;
    expect(user).toBeDefined();
    const name = user!.split(':')[0]!;
    expect(['root', '0', '']).not.toContain(name);
  });

  it('has a curl-free HEALTHCHECK on /health/live, SIGTERM and the CLI entrypoint', () => {
    const hc = inFinal('HEALTHCHECK').at(-1)?.args ?? '';
    expect(hc).toMatch(/\bCMD\b/);
    expect(hc).toContain('/health/live');
    expect(hc).toContain('fetch(');
    expect(hc).not.toMatch(/\b(curl|wget)\b/);
    // The CMD part of the exec form is valid JSON.
    expect(() => JSON.parse(hc.slice(hc.indexOf('['))) as unknown).not.toThrow();
    expect(inFinal('STOPSIGNAL').at(-1)?.args).toBe('SIGTERM');
    expect(inFinal('EXPOSE').map((i) => i.args)).toContain('8080');
    expect(jsonArgs(inFinal('ENTRYPOINT').at(-1))).toEqual(['node', 'bin/inferq.js']);
    const cmd = jsonArgs(inFinal('CMD').at(-1)) as string[];
    expect(cmd).toEqual(['api']);
  });

  it('names an entry point and default command that exist', () => {
    expect(existsSync(join(root, 'bin/inferq.js'))).toBe(true);
    expect(read('bin/inferq.js')).toContain('dist/cli/main.js');
    expect(CLI_COMMANDS).toEqual(['api', 'worker', 'start']);
    for (const c of jsonArgs(inFinal('CMD').at(-1)) as string[]) expect(CLI_COMMANDS).toContain(c);
  });
});

// ---------------------------------------------------------------------------------------------
// .dockerignore (Docker's rules: last matching pattern wins; a pattern matching a parent folder
// matches everything under it; `!` re-includes).
// ---------------------------------------------------------------------------------------------
function dockerignore(src: string): (path: string) => boolean {
  const rules = src
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      const re = new RegExp(
        '^' +
          pattern
            .split('/')
            .map((seg) =>
              seg === '**'
                ? '.*'
                : seg
                    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                    .replace(/\*/g, '[^/]*')
                    .replace(/\?/g, '[^/]'),
            )
            .join('/')
            .replace(/\.\*\//g, '(?:.*/)?') +
          '$',
      );
      return { negate, re };
    });
  return (path) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const { negate, re } of rules) {
      if (candidates.some((c) => re.test(c))) excluded = !negate;
    }
    return excluded;
  };
}

describe('.dockerignore', () => {
  const excluded = dockerignore(read('.dockerignore'));

  it('keeps node_modules, .git and local state out of the build context', () => {
    for (const p of [
      'node_modules',
      'node_modules/tsx/package.json',
      '.git',
      '.git/HEAD',
      'src/x/node_modules/y.js',
      '.env',
      '.inferq/redis/appendonly.aof',
      'test/api/predict.test.ts',
      'dist/cli/main.js',
      'packages/client/dist/client/index.js',
    ]) {
      expect(excluded(p), p).toBe(true);
    }
  });

  it('sends every file the Dockerfile copies', () => {
    for (const p of [
      'package.json',
      'package-lock.json',
      'bin/inferq.js',
      'src/cli/main.ts',
      'src/worker/inference/inference-thread.js',
      'tsconfig.json',
      'tsconfig.build.json',
      'models/breast-cancer/1.0.0/model.onnx',
    ]) {
      expect(excluded(p), p).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------
interface ComposeService {
  image?: string;
  build?: string | { context?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | { target?: number; published?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const composeDoc = parseAllDocuments(read('docker-compose.yml'), { merge: true });
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;

function composeEnv(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])
    : Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries) as Record<string, string>;
}
const asList = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/);
const builtFromHere = (svc: ComposeService) =>
  svc.build === '.' || (typeof svc.build === 'object' && (svc.build.context ?? '.') === '.');

describe('docker-compose.yml', () => {
  it('parses as one YAML document', () => {
    expect(composeDoc).toHaveLength(1);
    expect(composeDoc[0]!.errors).toEqual([]);
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'redis', 'worker']);
  });

  it('runs Redis 7 with AOF every second, noeviction, a named volume and a ping healthcheck', () => {
    const redis = compose.services.redis!;
    expect(redis.image).toMatch(/^redis:7(\b|$)/);
    const cmd = asList(redis.command).join(' ');
    expect(cmd).toMatch(/--appendonly yes\b/);
    expect(cmd).toMatch(/--appendfsync everysec\b/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction\b/);
    const volume = (redis.volumes ?? []).map((v) =>
      typeof v === 'string' ? v.split(':') : [v.source, v.target],
    );
    const data = volume.find(([, target]) => target === '/data');
    expect(data, 'a volume on /data').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(data![0]);
    expect(asList(redis.healthcheck?.test).join(' ')).toMatch(/redis-cli ping/);
  });

  it('serves the API on :8080 once Redis is healthy', () => {
    const api = compose.services.api!;
    expect(builtFromHere(api)).toBe(true);
    expect(api.ports).toContain('8080:8080');
    expect(composeEnv(api).REDIS_URL).toBe('redis://redis:6379');
    expect(api.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
    expect(asList(api.healthcheck?.test).join(' ')).toContain('/health/live');
  });

  it('runs two workers from the same image with a longer stop grace period', () => {
    const { api, worker } = compose.services;
    expect(worker!.image).toBe(api!.image);
    expect(builtFromHere(worker!) || worker!.build === undefined).toBe(true);
    expect(worker!.deploy?.replicas).toBe(2);
    expect(worker!.stop_grace_period).toBe('60s');
    expect(worker!.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
    expect(composeEnv(worker!).REDIS_URL).toBe('redis://redis:6379');
    expect(seconds(worker!.stop_grace_period!)).toBeGreaterThan(
      seconds(api!.stop_grace_period ?? '10s'),
    );
  });

  it('gives each inferq service a valid configuration that shuts down within its grace period', () => {
    for (const name of ['api', 'worker']) {
      const svc = compose.services[name]!;
      const env = composeEnv(svc);
      assertValidConfig(env, `compose ${name}`);
      const timeoutS = loadConfig(env).SHUTDOWN_TIMEOUT_MS / 1000;
      expect(timeoutS, name).toBeLessThan(seconds(svc.stop_grace_period ?? '10s'));
    }
  });

  it('starts only commands the CLI has', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (!(svc.image ?? '').startsWith('inferq') && !builtFromHere(svc)) continue;
      expect(svc.entrypoint, `${name} keeps the image's entrypoint`).toBeUndefined();
      const cmd = asList(svc.command);
      expect(cmd.length, name).toBeGreaterThan(0);
      expect(CLI_COMMANDS, name).toContain(cmd[0]);
    }
    expect(asList(compose.services.worker!.command)[0]).toBe('worker');
    expect(asList(compose.services.api!.command)[0] ?? 'api').toBe('api');
  });
});

// ---------------------------------------------------------------------------------------------
// k8s/: kustomize layout
// ---------------------------------------------------------------------------------------------
interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  patches?: { path?: string; patch?: string }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  namespace?: string;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

function docsOf(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of docs) expect(d.errors, relative(root, file)).toEqual([]);
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    const t = target[k];
    if (
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      t &&
      typeof t === 'object' &&
      !Array.isArray(t)
    ) {
      mergePatch(t as Record<string, unknown>, v as Record<string, unknown>);
    } else target[k] = v;
  }
}

/** A small kustomize: resources (files and kustomization folders), patches by kind+name, images. */
function build(dir: string): Doc[] {
  const k = docsOf(join(dir, 'kustomization.yaml'))[0] as Kustomization;
  expect(k.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
  expect(k.kind).toBe('Kustomization');
  expect(k.namespace, 'namespace-less').toBeUndefined();
  const out: Doc[] = [];
  for (const r of k.resources ?? []) {
    const p = join(dir, r);
    expect(existsSync(p), `${relative(root, dir)}: resource ${r} exists`).toBe(true);
    out.push(...(statSync(p).isDirectory() ? build(p) : docsOf(p)));
  }
  for (const patch of k.patches ?? []) {
    expect(patch.path, 'patches are files').toBeDefined();
    const p = join(dir, patch.path!);
    expect(existsSync(p), `${relative(root, dir)}: patch ${patch.path} exists`).toBe(true);
    for (const pd of docsOf(p)) {
      const target = out.find((d) => d.kind === pd.kind && d.metadata?.name === pd.metadata?.name);
      expect(target, `patch target ${pd.kind}/${pd.metadata?.name}`).toBeDefined();
      mergePatch(target!, pd);
    }
  }
  for (const img of k.images ?? []) {
    const used = out
      .flatMap((d) => podSpec(d)?.containers ?? [])
      .filter((c) => c.image?.split(':')[0] === img.name);
    expect(used.length, `image ${img.name} is used`).toBeGreaterThan(0);
    for (const c of used) c.image = `${img.newName ?? img.name}:${img.newTag ?? 'latest'}`;
  }
  return out;
}

function podSpec(d: Doc): IIoK8sApiCoreV1PodSpec | undefined {
  if (d.kind !== 'Deployment' && d.kind !== 'StatefulSet') return undefined;
  return (d as unknown as IDeployment | IStatefulSet).spec?.template.spec;
}

const k8sDir = join(root, 'k8s');
const base = build(join(k8sDir, 'base'));
const dev = build(join(k8sDir, 'overlays/dev'));

const find = <T>(docs: Doc[], kind: string, name: string) => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  expect(d, `${kind}/${name}`).toBeDefined();
  return d as unknown as T;
};
const container = (d: IDeployment | IStatefulSet) => d.spec!.template.spec!.containers[0]!;

/** apiVersion and schema of every kind the manifests may hold. */
const MODELS: Record<string, { apiVersion: string; validate: (d: Doc) => void }> = {
  ConfigMap: { apiVersion: 'v1', validate: (d) => new ConfigMap(d).validate() },
  Secret: { apiVersion: 'v1', validate: (d) => new Secret(d).validate() },
  Service: { apiVersion: 'v1', validate: (d) => new Service(d).validate() },
  Deployment: { apiVersion: 'apps/v1', validate: (d) => new Deployment(d).validate() },
  StatefulSet: { apiVersion: 'apps/v1', validate: (d) => new StatefulSet(d).validate() },
  HorizontalPodAutoscaler: {
    apiVersion: 'autoscaling/v2',
    validate: (d) => new HorizontalPodAutoscaler(d).validate(),
  },
  PodDisruptionBudget: {
    apiVersion: 'policy/v1',
    validate: (d) => new PodDisruptionBudget(d).validate(),
  },
  ScaledObject: {
    apiVersion: 'keda.sh/v1alpha1',
    validate: (d) => new ScaledObject(d as unknown as IScaledObject).validate(),
  },
  TriggerAuthentication: {
    apiVersion: 'keda.sh/v1alpha1',
    validate: (d) => new TriggerAuthentication(d as unknown as ITriggerAuthentication).validate(),
  },
};

/** The environment a container starts with: ConfigMap and Secret references resolved. */
function containerEnv(docs: Doc[], c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  const cm = (name: string) => find<IConfigMap>(docs, 'ConfigMap', name).data ?? {};
  const secret = (name: string) => {
    const s = find<ISecret>(docs, 'Secret', name);
    return {
      ...Object.fromEntries(
        Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      ),
      ...(s.stringData ?? {}),
    };
  };
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, cm(from.configMapRef.name!));
    if (from.secretRef) Object.assign(env, secret(from.secretRef.name!));
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const values = secret(name!);
      expect(Object.keys(values), `${e.name}: key ${key} in Secret ${name}`).toContain(key);
      env[e.name] = values[key]!;
    } else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      expect(Object.keys(cm(name!)), `${e.name}: key ${key} in ConfigMap ${name}`).toContain(key);
      env[e.name] = cm(name!)[key]!;
    } else throw new Error(`${e.name}: unsupported env source`);
  }
  return env;
}

const matches = (
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
) =>
  !!selector &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Seconds a preStop `sleep N` waits (0 without one). */
function preStopSeconds(c: Container): number {
  const cmd = c.lifecycle?.preStop?.exec?.command ?? [];
  const i = cmd.indexOf('sleep');
  return i >= 0 ? Number(cmd[i + 1]) : 0;
}

describe('k8s manifests', () => {
  const files = yamlFiles(k8sDir);

  it('parse, every document of every file', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const f of files) expect(docsOf(f).length, relative(root, f)).toBeGreaterThan(0);
  });

  it('list, in each kustomization, only files that exist and every manifest beside it', () => {
    for (const dir of [join(k8sDir, 'base'), join(k8sDir, 'overlays/dev')]) {
      const k = docsOf(join(dir, 'kustomization.yaml'))[0] as Kustomization;
      const listed = new Set([...(k.resources ?? []), ...(k.patches ?? []).map((p) => p.path)]);
      for (const f of readdirSync(dir).filter(
        (n) => /\.ya?ml$/.test(n) && n !== 'kustomization.yaml',
      )) {
        expect(listed.has(f), `${relative(root, dir)}/${f} is listed`).toBe(true);
      }
    }
  });

  it('hold the expected kinds in base and dev', () => {
    const kinds = (docs: Doc[]) => docs.map((d) => `${d.kind}/${d.metadata?.name}`).sort();
    expect(kinds(base)).toEqual(
      [
        'ConfigMap/inferq-config',
        'Secret/inferq-secrets',
        'Deployment/inferq-api',
        'Service/inferq-api',
        'HorizontalPodAutoscaler/inferq-api',
        'PodDisruptionBudget/inferq-api',
        'Deployment/inferq-worker',
        'PodDisruptionBudget/inferq-worker',
        'ScaledObject/inferq-worker',
      ].sort(),
    );
    expect(kinds(dev)).toEqual(
      [...kinds(base), 'Service/inferq-redis', 'StatefulSet/inferq-redis'].sort(),
    );
  });

  it('use the expected apiVersions, validate against the Kubernetes and KEDA schemas, carry no namespace and the inferq labels', () => {
    for (const d of dev) {
      const where = `${d.kind}/${d.metadata?.name}`;
      const model = MODELS[d.kind ?? ''];
      expect(model, `${where}: expected kind`).toBeDefined();
      expect(d.apiVersion, where).toBe(model!.apiVersion);
      expect(() => model!.validate(structuredClone(d)), where).not.toThrow();
      expect(d.metadata?.namespace, where).toBeUndefined();
      expect(d.metadata?.labels?.['app.kubernetes.io/name'], where).toBe('inferq');
      expect(d.metadata?.labels?.['app.kubernetes.io/component'], where).toBeTruthy();
    }
  });

  it('give workloads selectors that match their pods, resources and a non-root security context', () => {
    for (const d of dev.filter((x) => x.kind === 'Deployment' || x.kind === 'StatefulSet')) {
      const w = d as unknown as IDeployment | IStatefulSet;
      const where = `${d.kind}/${d.metadata?.name}`;
      const pod = w.spec!.template;
      expect(matches(w.spec!.selector.matchLabels, pod.metadata?.labels), `${where} selector`).toBe(
        true,
      );
      expect(pod.metadata?.labels?.['app.kubernetes.io/component'], where).toBe(
        d.metadata?.labels?.['app.kubernetes.io/component'],
      );
      expect(
        pod.spec!.terminationGracePeriodSeconds,
        `${where} terminationGracePeriodSeconds`,
      ).toBeGreaterThan(0);
      const podSec = pod.spec!.securityContext ?? {};
      for (const c of pod.spec!.containers) {
        const sec = { ...podSec, ...c.securityContext };
        expect(sec.runAsNonRoot, `${where}/${c.name} runAsNonRoot`).toBe(true);
        expect(sec.runAsUser ?? 1000, `${where}/${c.name} runAsUser`).not.toBe(0);
        expect(c.securityContext?.allowPrivilegeEscalation, `${where}/${c.name}`).toBe(false);
        expect(c.resources?.requests?.cpu, `${where}/${c.name} cpu request`).toBeDefined();
        expect(c.resources?.requests?.memory, `${where}/${c.name} memory request`).toBeDefined();
        expect(c.resources?.limits?.memory, `${where}/${c.name} memory limit`).toBeDefined();
        if (
          c.securityContext?.readOnlyRootFilesystem &&
          d.metadata?.name?.startsWith('inferq-') &&
          c.image?.startsWith('inferq')
        ) {
          // tsx writes its cache to the temporary folder.
          expect(
            c.volumeMounts?.some((m) => m.mountPath === '/tmp'),
            `${where}/${c.name} writable /tmp`,
          ).toBe(true);
        }
      }
    }
  });

  it('run only commands the CLI has, through the image entrypoint', () => {
    for (const d of dev) {
      for (const c of podSpec(d)?.containers ?? []) {
        if (!c.image?.startsWith('inferq')) continue;
        expect(
          c.command,
          `${d.metadata?.name}: keeps ENTRYPOINT node bin/inferq.js`,
        ).toBeUndefined();
        expect(c.args?.length, d.metadata?.name).toBe(1);
        expect(CLI_COMMANDS).toContain(c.args![0]);
      }
    }
    expect(container(find<IDeployment>(base, 'Deployment', 'inferq-api')).args).toEqual(['api']);
    expect(container(find<IDeployment>(base, 'Deployment', 'inferq-worker')).args).toEqual([
      'worker',
    ]);
  });

  it('start every inferq container with a valid configuration', () => {
    for (const docs of [base, dev]) {
      for (const name of ['inferq-api', 'inferq-worker']) {
        const env = containerEnv(docs, container(find<IDeployment>(docs, 'Deployment', name)));
        assertValidConfig(env, name);
      }
      for (const key of Object.keys(
        find<IConfigMap>(docs, 'ConfigMap', 'inferq-config').data ?? {},
      )) {
        expect(ConfigSchema.shape, `ConfigMap key ${key}`).toHaveProperty(key);
      }
    }
  });

  it('probe the API on /health/ready and /health/live and drain it before SIGTERM', () => {
    const api = find<IDeployment>(base, 'Deployment', 'inferq-api');
    const c = container(api);
    const portOf = (p: string | number | undefined) =>
      typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort;
    expect(c.readinessProbe?.httpGet?.path).toBe('/health/ready');
    expect(c.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(portOf(c.readinessProbe?.httpGet?.port)).toBe(8080);
    expect(portOf(c.livenessProbe?.httpGet?.port)).toBe(8080);
    expect(api.spec!.template.spec!.terminationGracePeriodSeconds).toBe(40);
    expect(preStopSeconds(c)).toBeGreaterThan(0);
    const env = containerEnv(base, c);
    expect(Number(env.PORT)).toBe(8080);
    const budget = preStopSeconds(c) + loadConfig(env).SHUTDOWN_TIMEOUT_MS / 1000;
    expect(budget, 'preStop + SHUTDOWN_TIMEOUT_MS within the grace period').toBeLessThan(
      api.spec!.template.spec!.terminationGracePeriodSeconds!,
    );
  });

  it('give workers a longer grace period than the API, a preStop and the metrics port', () => {
    const api = find<IDeployment>(base, 'Deployment', 'inferq-api');
    const worker = find<IDeployment>(base, 'Deployment', 'inferq-worker');
    const grace = worker.spec!.template.spec!.terminationGracePeriodSeconds!;
    expect(grace).toBe(90);
    expect(grace).toBeGreaterThan(api.spec!.template.spec!.terminationGracePeriodSeconds!);
    const c = container(worker);
    expect(c.lifecycle?.preStop).toBeDefined();
    const env = containerEnv(base, c);
    expect(preStopSeconds(c) + loadConfig(env).SHUTDOWN_TIMEOUT_MS / 1000).toBeLessThan(grace);
    expect(c.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(
      Number(env.WORKER_METRICS_PORT ?? 9465),
    );
    // Replica counts belong to the autoscalers.
    expect(worker.spec!.replicas).toBeUndefined();
    expect(api.spec!.replicas).toBeUndefined();
  });

  it('route the Service to the API pods and protect both roles with PodDisruptionBudgets', () => {
    const api = find<IDeployment>(base, 'Deployment', 'inferq-api');
    const svc = find<IService>(base, 'Service', 'inferq-api');
    expect(matches(svc.spec?.selector, api.spec!.template.metadata?.labels)).toBe(true);
    for (const p of svc.spec?.ports ?? []) {
      expect(container(api).ports?.map((x) => x.name)).toContain(p.targetPort);
    }
    for (const name of ['inferq-api', 'inferq-worker']) {
      const pdb = find<IPodDisruptionBudget>(base, 'PodDisruptionBudget', name);
      const dep = find<IDeployment>(base, 'Deployment', name);
      expect(
        matches(pdb.spec?.selector?.matchLabels, dep.spec!.template.metadata?.labels),
        name,
      ).toBe(true);
      expect(pdb.spec?.maxUnavailable ?? pdb.spec?.minAvailable, name).toBeDefined();
    }
  });

  it('autoscale the API on CPU', () => {
    const hpa = find<IHorizontalPodAutoscaler>(base, 'HorizontalPodAutoscaler', 'inferq-api');
    expect(hpa.spec?.scaleTargetRef).toMatchObject({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'inferq-api',
    });
    expect(
      hpa.spec?.metrics?.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu'),
    ).toBe(true);
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec!.maxReplicas).toBeGreaterThan(hpa.spec!.minReplicas!);
    expect(
      container(find<IDeployment>(base, 'Deployment', 'inferq-api')).resources?.requests?.cpu,
    ).toBeDefined();
  });

  it('autoscale the workers with KEDA on every state a job waits in', () => {
    const so = find<IScaledObject>(base, 'ScaledObject', 'inferq-worker');
    expect(so.spec.scaleTargetRef).toMatchObject({ name: 'inferq-worker' });
    expect(so.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(1);

    // Queues are cut into shard queues (QUEUE_SHARDS), each with keys of its own: the triggers
    // read the API's gauges, which add every shard up, over every state a job waits in.
    const config = find<IConfigMap>(base, 'ConfigMap', 'inferq-config').data ?? {};
    expect(config.QUEUE_PREFIX).toBe('{inferq}');
    expect(Number(config.QUEUE_SHARDS)).toBeGreaterThanOrEqual(1);
    const triggers = so.spec.triggers;
    expect(triggers.every((t) => t.type === 'prometheus')).toBe(true);
    const queries = triggers.map((t) => t.metadata.query ?? '');
    const jobs = queries.find((q) => q.includes('inferq_queue_jobs')) ?? '';
    for (const state of ['waiting', 'prioritized', 'delayed', 'active'])
      expect(jobs, `online jobs in state ${state}`).toContain(state);
    expect(queries.some((q) => q.includes('inferq_batch_chunks'))).toBe(true);

    // Every trigger is named and summed by scalingModifiers (the HPA alone would take the max).
    const advanced = so.spec.advanced as
      { scalingModifiers?: { formula?: string; target?: string; metricType?: string } } | undefined;
    const formula = advanced?.scalingModifiers?.formula ?? '';
    for (const t of triggers) {
      expect(t.name, `${t.type} trigger is named`).toMatch(/^[a-z_]\w*$/);
      expect(formula, `formula uses ${t.name}`).toMatch(new RegExp(`\\b${t.name}\\b`));
      for (const v of Object.values(t.metadata))
        expect(typeof v, 'KEDA metadata values are strings').toBe('string');
    }
    expect(Number(advanced?.scalingModifiers?.target)).toBeGreaterThan(0);
  });
});

describe('k8s dev overlay', () => {
  it('adds a persistent Redis with AOF and noeviction behind a headless Service', () => {
    const sts = find<IStatefulSet>(dev, 'StatefulSet', 'inferq-redis');
    const svc = find<IService>(dev, 'Service', 'inferq-redis');
    expect(svc.spec?.clusterIP).toBe('None');
    expect(sts.spec?.serviceName).toBe('inferq-redis');
    expect(matches(svc.spec?.selector, sts.spec?.template.metadata?.labels)).toBe(true);
    const c = container(sts);
    expect(c.image).toMatch(/^redis:7\b/);
    const args = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
    expect(args).toMatch(/--appendonly yes\b/);
    expect(args).toMatch(/--appendfsync everysec\b/);
    expect(args).toMatch(/--maxmemory-policy noeviction\b/);
    const claim = sts.spec?.volumeClaimTemplates?.[0]?.metadata?.name;
    expect(c.volumeMounts?.find((m) => m.name === claim)?.mountPath).toBe('/data');
    expect(c.readinessProbe).toBeDefined();
  });

  it('points the app at that Redis', () => {
    const api = containerEnv(dev, container(find<IDeployment>(dev, 'Deployment', 'inferq-api')));
    expect(new URL(api.REDIS_URL!).hostname).toBe('inferq-redis');
    const secret = find<ISecret>(dev, 'Secret', 'inferq-secrets');
    expect(Object.values(secret.stringData ?? {}).join(' ')).not.toContain('CHANGE_ME');
  });

  it('documents that production wants a managed Redis', () => {
    const readme = read('k8s/README.md');
    expect(readme).toMatch(/managed Redis/i);
    expect(readme).toMatch(/noeviction/);
    expect(readme).toMatch(/AOF|appendonly/);
    expect(readme).toContain('{inferq}');
  });
});
