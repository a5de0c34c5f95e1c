"""The package's layers: each module imports only from its own layer or the layers below, and no import circle exists.

The layers are those docs/design.md draws. Imports inside functions count
too: a lazy import still ties the two modules together.
"""

import ast
import os

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, 'gan_jax')

# Lowest first. A module belongs to the first entry that is a prefix of its name.
LAYERS = (
    ('foundation', ('gan_jax.errors', 'gan_jax.registry', 'gan_jax.cli')),
    ('config', ('gan_jax.config',)),
    ('devices and figures', ('gan_jax.parallel', 'gan_jax.viz')),
    ('networks and data', ('gan_jax.models', 'gan_jax.data')),
    ('step math', ('gan_jax.core',)),
    ('families, sampling and metrics', ('gan_jax.families', 'gan_jax.generation',
                                        'gan_jax.metrics')),
    ('evaluation', ('gan_jax.evaluation',)),
    ('training', ('gan_jax.training',)),
    ('applications', ('gan_jax.toy2d', 'gan_jax.analysis')),
    ('commands', ('gan_jax.main', 'gan_jax.evaluate', 'gan_jax.generate', 'gan_jax.analyze',
                  'gan_jax.doctor')),
)


def module_name(path: str) -> str:
  parts = os.path.relpath(path, REPO_ROOT)[:-3].split(os.sep)
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def all_modules() -> dict[str, str]:
  modules = {}
  for root, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(root, name)
        modules[module_name(path)] = path
  return modules


def imported_modules(path: str, modules: dict[str, str]) -> set[str]:
  """The gan_jax modules `path` imports, at its top or inside functions."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [f'{node.module}.{a.name}' for a in node.names] + [node.module]
    else:
      continue
    for name in names:
      while name and name not in modules:
        name = name.rpartition('.')[0]
      if name.startswith('gan_jax.') or name == 'gan_jax':
        found.add(name)
  found.discard(module_name(path))
  return found


def layer_of(module: str) -> int:
  for index, (_, prefixes) in enumerate(LAYERS):
    if any(module == p or module.startswith(p + '.') for p in prefixes):
      return index
  raise AssertionError(f'{module} is in no layer: add it to LAYERS and docs/design.md')


def import_graph() -> dict[str, set[str]]:
  modules = all_modules()
  graph = {m: imported_modules(p, modules) for m, p in modules.items()}
  # A package's __init__ is implied by importing any of its modules; it is not an edge.
  return {m: {i for i in deps if not m.startswith(i + '.')} for m, deps in graph.items()}


def test_every_module_imports_only_its_own_layer_or_lower():
  graph = import_graph()
  upward = [f'{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})'
            for m, deps in sorted(graph.items()) if m != 'gan_jax' for d in sorted(deps)
            if d != 'gan_jax' and layer_of(d) > layer_of(m)]
  assert not upward, '\n'.join(upward)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  state, stack = {}, []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for dep in sorted(graph.get(node, ())):
      if state.get(dep) == 'open':
        return stack[stack.index(dep):] + [dep]
      if dep not in state:
        cycle = visit(dep)
        if cycle:
          return cycle
    state[node] = 'done'
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def test_no_import_circle():
  cycle = find_cycle(import_graph())
  assert cycle is None, ' -> '.join(cycle)


def test_the_checks_catch_a_circle_and_an_upward_import():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b'}, 'b': set()}) is None
  assert layer_of('gan_jax.core.steps') < layer_of('gan_jax.training.loop')
  with pytest.raises(AssertionError, match='in no layer'):
    layer_of('gan_jax.somewhere_new')


def test_the_top_of_the_package_holds_only_commands_and_foundations():
  top = sorted(name[:-3] for name in os.listdir(PACKAGE)
               if name.endswith('.py') and name != '__init__.py')
  assert len(top) <= 8, top
  for name in top:
    assert layer_of(f'gan_jax.{name}') in (0, len(LAYERS) - 1), name
