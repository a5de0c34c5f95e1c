"""The commands the docs show still run: their modules exist, and their flags and config keys are defined.

Reads the shell commands of README.md, docs/*.md, experiments/README.md,
experiments/RESULTS.md and BENCHMARKS.md: fenced ```bash / ```sh / ```
blocks (backslash continuations joined, comment lines skipped), indented code
lines that start with `python -m`, and inline code spans that start with
`python -m `. Every `python -m MODULE ...` with MODULE in gan_jax, experiments
or benchmarks, also inside another tool's command (srun, gcloud, time), must
name a module that exists, use only flags that module defines (read from its
`--helpfull` in a subprocess, because some commands define their flags only
when run as a script), and override only config keys that exist in the
config it loads (`--config=FILE[:preset]`, else the base config), and write
(`--workdir`, `--out`, ...) only under runs/, which git ignores. Nothing is
trained. Each doc file is one test that lists all of its bad commands at once.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys

from absl import flags
import ml_collections
from ml_collections import config_flags
import pytest

from gan_jax.config import base as config_base
from tests.conftest import REPO_ROOT

CHECKED_PACKAGES = ('gan_jax', 'experiments', 'benchmarks')
SHELL_FENCES = ('', 'bash', 'sh', 'shell', 'console')
# Flags whose values are config keys (KEY=V1,V2 or KEY1+KEY2=V1,V2), as experiments.sweep's --grid.
KEY_VALUED_FLAGS = ('grid',)

# Flags that name what a command writes: relative paths must stay under runs/, which
# .gitignore covers, so a reader who follows the docs leaves the checkout clean.
OUTPUT_FLAGS = {'workdir', 'out', 'json_out', 'save_stats'}
OUTPUT_FLAGS_OF = {'gan_jax.generate': {'grid'}}
IGNORED_OUTPUT_ROOT = 'runs/'

PYTHON_M = re.compile(r'\bpython3? -m ([A-Za-z_][\w.]*)')
INLINE_CODE = re.compile(r'(?<!`)`([^`\n]+)`(?!`)')
HELP_FLAG_LINE = re.compile(r'^\s+(?:-\S+,\s*)?--(\[no\])?([A-Za-z_][\w.-]*)')
# Placeholders in prose, not names to check: configs/NAME.py, experiments.NAME, FILE:CLASS, --config=...
PLACEHOLDER = re.compile(r'\.\.\.|\b[A-Z][A-Z_]{2,}\b')


def doc_files() -> list[str]:
  paths = (['README.md'] + sorted(os.path.relpath(p, REPO_ROOT)
                                  for p in glob.glob(os.path.join(REPO_ROOT, 'docs', '*.md')))
           + ['experiments/README.md', 'experiments/RESULTS.md', 'BENCHMARKS.md'])
  return [p for p in paths if os.path.exists(os.path.join(REPO_ROOT, p))]


@dataclasses.dataclass(frozen=True)
class DocCommand:
  line: int    # 1-based line of the command's first line in its file
  text: str    # continuations joined into one line
  kind: str    # fence | indented | inline


def _join_continuations(lines: list[str], start: int) -> tuple[str, int]:
  """The logical line starting at lines[start], and the index after it."""
  parts, i = [], start
  while True:
    text = lines[i].rstrip()
    if text.endswith('\\') and i + 1 < len(lines):
      parts.append(text[:-1].strip())
      i += 1
    else:
      parts.append(text.strip())
      return ' '.join(parts), i + 1


def extract_commands(markdown: str) -> list[DocCommand]:
  """Shell commands of a markdown text: shell fences, indented `python -m` lines, inline `python -m` spans."""
  lines = markdown.splitlines()
  commands, fence, i = [], None, 0
  while i < len(lines):
    stripped = lines[i].strip()
    if fence is None and stripped.startswith(('```', '~~~')):
      fence = (stripped[:3], stripped[3:].strip().split(' ')[0].lower())
      i += 1
      continue
    if fence is not None:
      if stripped.startswith(fence[0]) and not stripped[3:].strip():
        fence = None
        i += 1
      elif fence[1] in SHELL_FENCES and stripped and not stripped.startswith('#'):
        text, end = _join_continuations(lines, i)
        commands.append(DocCommand(i + 1, text, 'fence'))
        i = end
      else:
        i += 1
      continue
    if lines[i].startswith('    ') and PYTHON_M.match(stripped):
      text, end = _join_continuations(lines, i)
      commands.append(DocCommand(i + 1, text, 'indented'))
      i = end
      continue
    commands.extend(DocCommand(i + 1, span.strip(), 'inline') for span in INLINE_CODE.findall(lines[i])
                    if PYTHON_M.match(span.strip()))
    i += 1
  return commands


def _tokens(text: str) -> list[str]:
  """Shell words of one command, up to its end (&&, ;, |, a redirection) or a comment."""
  text = re.split(r'&&|\|\||;|\|', text, maxsplit=1)[0]
  try:
    words = shlex.split(text, comments=True)
  except ValueError:  # the command sits inside another's quotes, e.g. gcloud --command='...'
    words = shlex.split(text.replace("'", ' ').replace('"', ' '), comments=True)
  tokens = []
  for word in words:
    if re.match(r'^(\d?>|&)', word):
      break
    tokens.append(word)
  return tokens


def python_invocations(command: str) -> list[tuple[str, list[str]]]:
  """(module, arguments) of every `python -m MODULE` of a checked package in one command."""
  return [(m.group(1), _tokens(command[m.end():])) for m in PYTHON_M.finditer(command)
          if m.group(1).split('.')[0] in CHECKED_PACKAGES
          and not PLACEHOLDER.search(m.group(1))]  # e.g. experiments.NAME in prose


@dataclasses.dataclass(frozen=True)
class ModuleFlags:
  names: frozenset
  booleans: frozenset  # may also be given as --noNAME
  error: str = ''


@functools.lru_cache(maxsize=None)
def module_flags(module: str) -> ModuleFlags:
  """The flags a command defines, from its `--helpfull` (absl exits 1 on help unless gan_jax.cli runs it)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  try:
    result = subprocess.run([sys.executable, '-m', module, '--helpfull'], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
  except subprocess.TimeoutExpired:
    return ModuleFlags(frozenset(), frozenset(), f'`python -m {module} --helpfull` timed out')
  names, booleans = set(), set()
  for line in (result.stdout + '\n' + result.stderr).splitlines():
    match = HELP_FLAG_LINE.match(line)
    if match:
      names.add(match.group(2))
      if match.group(1):
        booleans.add(match.group(2))
  if 'helpfull' not in names:  # not a help text: the module failed before printing it
    tail = (result.stderr or result.stdout).strip()[-600:]
    return ModuleFlags(frozenset(), frozenset(),
                       f'`python -m {module} --helpfull` printed no flags (status '
                       f'{result.returncode}): {tail}')
  return ModuleFlags(frozenset(names), frozenset(booleans))


@functools.lru_cache(maxsize=None)
def load_config(spec: str) -> ml_collections.ConfigDict:
  """The config of `--config=spec` as gan_jax loads it (ml_collections' FILE[:preset] parser); '' = the base."""
  if not spec:
    return config_base.get_config()
  path, _, preset = spec.partition(':')
  if not os.path.isabs(path):
    path = os.path.join(REPO_ROOT, path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {spec.partition(":")[0]} does not exist')
  if PLACEHOLDER.search(preset):
    preset = ''
  # The flag gan_jax.main defines, in a private FlagValues so that no global flag changes.
  flag_values = flags.FlagValues()
  holder = config_flags.DEFINE_config_file(
      'config', path + (f':{preset}' if preset else ''), flag_values=flag_values,
      lock_config=True, sys_argv=['docs'])
  flag_values(['docs'])
  holder.value.get('seed')  # the parser defers a load error to the first access
  return holder.value


def has_key(config: ml_collections.ConfigDict, dotted: str) -> bool:
  node = config
  for part in dotted.split('.'):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return False
    node = node[part]
  return True


def _flag_values(args: list[str]):
  """(flag name, value or None) for every --flag in args; a value may be the next word."""
  for i, arg in enumerate(args):
    if not arg.startswith('--') or arg == '--':
      continue
    name, eq, value = arg[2:].partition('=')
    if not eq:
      following = args[i + 1] if i + 1 < len(args) else ''
      value = following if following and not following.startswith('-') else None
    yield name, value


def _outside_checkout_or_ignored(path: str) -> bool:
  """True for runs/..., absolute, home, parent, variable or placeholder paths."""
  return (path.startswith((IGNORED_OUTPUT_ROOT, './' + IGNORED_OUTPUT_ROOT, '/', '~', '../', '$'))
          or PLACEHOLDER.search(path) is not None)


def check_invocation(module: str, args: list[str]) -> list[str]:
  """What is wrong with `python -m module args`: each problem as one line."""
  try:
    found = importlib.util.find_spec(module) is not None
  except ModuleNotFoundError:
    found = False
  if not found:
    return [f'no module {module}']
  defined = module_flags(module)
  if defined.error:
    return [defined.error]
  problems, config_spec, config_keys = [], '', []
  for name, value in _flag_values(args):
    if name.startswith('config.'):
      config_keys.append(name[len('config.'):])
      continue
    if (name in OUTPUT_FLAGS | OUTPUT_FLAGS_OF.get(module, set()) and value
        and not _outside_checkout_or_ignored(value)):
      problems.append(f'--{name}={value} writes into the checkout outside '
                      f'{IGNORED_OUTPUT_ROOT}, where git shows it as untracked')
    if name in defined.names:
      if name == 'config':
        config_spec = value or ''
      elif name in KEY_VALUED_FLAGS and value and '=' in value:
        config_keys.extend(value.split('=', 1)[0].split('+'))
    elif not (name.startswith('no') and name[2:] in defined.booleans):
      problems.append(f'{module} has no flag --{name}')
  if not config_keys:
    return problems
  if 'config' not in defined.names:
    return problems + [f'{module} takes no --config, so --config.{config_keys[0]} is an error']
  if PLACEHOLDER.search(config_spec.partition(':')[0]):
    config_spec = ''  # e.g. --config=configs/NAME.py: every config file has the base's keys
  try:
    config = load_config(config_spec)
  except Exception as e:  # pylint: disable=broad-except  (any load failure is the doc's problem)
    return problems + [f'cannot load --config={config_spec}: {type(e).__name__}: {e}']
  problems += [f'config key {key!r} does not exist in {config_spec or "the base config"}'
               for key in config_keys if not has_key(config, key)]
  return problems


@pytest.mark.parametrize('doc', doc_files())
def test_doc_commands_use_existing_modules_flags_and_config_keys(doc):
  with open(os.path.join(REPO_ROOT, doc), encoding='utf-8') as f:
    commands = extract_commands(f.read())
  bad = []
  for command in commands:
    for module, args in python_invocations(command.text):
      bad += [f'{doc}:{command.line}: {problem}\n    {command.text}'
              for problem in check_invocation(module, args)]
  assert not bad, f'{len(bad)} bad command(s) in {doc}:\n' + '\n'.join(bad)


def test_extraction_of_fences_continuations_comments_and_inline_spans():
  text = '\n'.join([
      'Run `python -m gan_jax.main --workdir=A` or `pip install x`.',  # 1
      '```bash',                                                       # 2
      '# a comment, skipped',                                          # 3
      'python -m gan_jax.generate --workdir=B \\',                     # 4
      '    --num=3   # trailing comment',                                # 5
      "gcloud x --command='cd r && \\",                                # 6
      "    python -m gan_jax.main --workdir=C'",                       # 7
      '```',                                                           # 8
      '```python',                                                     # 9
      'python -m gan_jax.not_a_shell_block',                           # 10
      '```',                                                           # 11
      '',                                                              # 12
      '    python -m experiments.sweep --seeds 3',                     # 13
  ])
  commands = extract_commands(text)
  assert [c.line for c in commands] == [1, 4, 6, 13]
  assert python_invocations(commands[0].text) == [('gan_jax.main', ['--workdir=A'])]
  assert python_invocations(commands[1].text) == [
      ('gan_jax.generate', ['--workdir=B', '--num=3'])]
  assert python_invocations(commands[2].text) == [('gan_jax.main', ['--workdir=C'])]
  assert python_invocations(commands[3].text) == [('experiments.sweep', ['--seeds', '3'])]


def test_checker_catches_a_bad_flag_a_bad_key_and_a_missing_module():
  assert check_invocation('gan_jax.main', ['--workdir=runs/x', '--config.train.num_steps=2']) == []
  assert check_invocation('gan_jax.main', ['--config=configs/cgan_cifar10.py:diffaugment',
                                           '--config.optim.d.lr=1e-4']) == []
  assert check_invocation('gan_jax.main', ['--workdr=runs/x']) == ['gan_jax.main has no flag --workdr']
  assert 'num_stepz' in check_invocation('gan_jax.main', ['--config.train.num_stepz=2'])[0]
  assert check_invocation('gan_jax.no_such_module', []) == ['no module gan_jax.no_such_module']
  assert 'untracked' in check_invocation('gan_jax.generate', ['--workdir=runs/a',
                                                               '--grid=grid.png'])[0]
  assert check_invocation('gan_jax.generate', ['--workdir=DIR', '--out=/tmp/x.npz',
                                               '--grid=runs/a/grid.png']) == []


def test_readme_carries_the_commands_ci_runs():
  """.ci/run installs and tests as the README's quickstart says; keep one test command there."""
  with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
    fenced = [_tokens(c.text) for c in extract_commands(f.read()) if c.kind == 'fence']
  assert fenced.count(['python', '-m', 'pytest', '-q']) == 1
  assert ['pip', 'install', '-e', '.[test]'] in fenced
