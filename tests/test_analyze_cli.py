"""`python -m gan_jax.analyze`: every analysis on a tiny trained run, through the command line."""

import json
import os
import subprocess
import sys

import pytest

from gan_jax import analyze, errors
from tests.conftest import REPO_ROOT, subprocess_env

ALL = ('arithmetic', 'directions', 'discriminator', 'duplicates', 'embedding', 'interpolate',
       'spectrum')


def test_every_analysis_runs_from_the_command_line_and_writes_its_files(tmp_path, analysis_runs):
  out = tmp_path / 'analysis'
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.analyze', f'--workdir={analysis_runs["cgan"]}',
       '--what=all', '--num=60', f'--classifier={analysis_runs["classifier"]}',
       '--heldout_split=t10k', f'--out={out}'],
      cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['step'] == 12 and tuple(summary['analyses']) == ALL
  for name in ALL:
    numbers = json.loads((out / f'{name}.json').read_text())
    assert numbers['step'] == 12 and numbers['seed'] == 0
    assert numbers['files'], name
    for file in numbers['files']:
      assert os.path.getsize(out / file) > 0, (name, file)


def test_the_same_seed_gives_the_same_numbers(tmp_path, analysis_runs):
  kwargs = dict(classifier=analysis_runs['classifier'], num=40)
  first = analyze.run(analysis_runs['gan'], ['arithmetic', 'directions'],
                      out_dir=str(tmp_path / 'a'), **kwargs)
  again = analyze.run(analysis_runs['gan'], ['arithmetic', 'directions'],
                      out_dir=str(tmp_path / 'b'), **kwargs)
  assert json.dumps(first, sort_keys=True, default=str) == json.dumps(again, sort_keys=True,
                                                                      default=str)


def test_an_unknown_analysis_is_an_error_naming_the_known_ones(tmp_path, analysis_runs):
  with pytest.raises(errors.ConfigError, match="Unknown analysis 'spectra'.*Did you mean "
                                               "'spectrum'"):
    analyze.run(analysis_runs['gan'], ['spectra'], out_dir=str(tmp_path))
