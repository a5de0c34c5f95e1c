"""Every command's --help prints its usage and exits 0 (absl alone exits 1); real errors keep status 1."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, subprocess_env

COMMANDS = ['gan_jax.main', 'gan_jax.generate', 'gan_jax.evaluate', 'gan_jax.doctor',
            'gan_jax.data.prepare', 'gan_jax.metrics.fid',
            'gan_jax.metrics.inception_weights', 'gan_jax.metrics.classifier',
            'experiments.sweep', 'experiments.augment', 'experiments.mode_collapse',
            'experiments.report_figures', 'experiments.real_fid']


@pytest.mark.parametrize('module', COMMANDS)
def test_help_exits_zero(module):
  result = subprocess.run([sys.executable, '-m', module, '--help'], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-1000:]
  assert 'USAGE' in result.stdout or 'flags:' in result.stdout


def test_help_variants_and_errors_keep_their_status():
  script = (
      'import sys\n'
      'from gan_jax import cli\n'
      'def main(argv):\n'
      '  sys.exit(1)   # a real failure of the command itself\n'
      'cli.run(main)\n')
  def status(*args):
    return subprocess.run([sys.executable, '-c', script, *args], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True,
                          timeout=300).returncode
  assert status('--helpshort') == 0 and status('-h') == 0
  assert status() == 1
  assert status('--no_such_flag') == 1
