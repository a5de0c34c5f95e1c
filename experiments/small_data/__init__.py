"""GANs on small datasets: a baseline against DiffAugment, ADA and ADA + LeCam at the same budget.

With N training images D memorises them: it scores its own training images
as real and everything else, held-out real images included, as fake, and G's
feedback degrades. DiffAugment (Zhao et al. 2020) and ADA (Karras et al.
2020, p steered so that r_t = E[sign(D(x_real))] stays at a target) augment
every image D sees; LeCam (Tseng et al. 2021) keeps D's outputs near
moving anchors. For one dataset and one N this study

  1. loads every image of the data (--data_source, --data_path), sets aside a
     fixed held-out set of --num_heldout images (seed 1234, the same for every
     N and --seed, as experiments/augment.py's test set), and draws the
     N = --num_train training images from the rest, balanced
     (N / classes per class, --seed), written once as a class folder in
     WORKDIR/data/train (the held-out and training arrays: WORKDIR/data/*.npz);
  2. trains each variant of VARIANTS (--variants) from the --config file on
     that folder, for exactly --steps steps (train.max_minutes off) with the
     same batch, seed and model, into WORKDIR/VARIANT, keeping --checkpoints
     evenly spaced checkpoints and recording the wall seconds and the machine
     load (os.getloadavg) before and after;
  3. scores each variant's last checkpoint against the FULL data (not the N
     images: the question is how well G learned the distribution): the
     domain-classifier Fréchet distance cls_fd and class coverage cls_cov
     (classes present, the rarest class's share) of --eval_num samples against
     --num_reference images, with the cached domain classifier of the full
     data; FID of --fid_num samples against --fid_stats (real Inception
     weights) when given; and D's memorisation: mean sigmoid(D(x)) (running
     BatchNorm statistics) on the N training images and on min(N,
     --num_heldout) held-out images, their gap, and the AUC of telling the
     two apart by D's logit (0.5: no memorisation);
  4. writes WORKDIR/results.json (every number, protocol, the command and the
     settings), WORKDIR/RESULTS.md (one table row per variant, the last sample
     grids) and WORKDIR/ada_p.png (ADA's p and r_t against the step, with the
     target, for the variants that log ada_p).

Run it as `python -m experiments.small_data` (the commands of the measured
studies, and how a rerun resumes: experiments/small_data/__main__.py). The parts:
  settings  Settings: everything a study depends on (the command line's flags)
  split     the full data's config, and the balanced training / held-out split
  variants  VARIANTS, each variant's config, and its training (resumed, or skipped when done)
  scoring   the classifier metrics and FID against the full data, and D's memorisation
  report    the Markdown table and page, and ADA's p and r_t figure
  study     run_study: all of it, writing results.json and RESULTS.md
"""

from experiments.small_data.report import (ADA_FIGURE, RESULTS_MD, TABLE_HEADER, ada_curves,
                                           markdown_report, markdown_table, write_ada_figure)
from experiments.small_data.scoring import (SAMPLE_SEED, SCORE_RECORD, FidReference, auc,
                                            cached_scores, d_memorisation, score_variant,
                                            write_json)
from experiments.small_data.settings import Settings
from experiments.small_data.split import balanced_split, full_data_config, prepare_split
from experiments.small_data.study import RESULTS_JSON, run_study
from experiments.small_data.variants import (TRAIN_RECORD, VARIANTS, kept_checkpoints,
                                             parse_override, set_dotted, train_variant,
                                             variant_config)

__all__ = ['ADA_FIGURE', 'RESULTS_JSON', 'RESULTS_MD', 'SAMPLE_SEED', 'SCORE_RECORD',
           'TABLE_HEADER', 'TRAIN_RECORD', 'VARIANTS', 'FidReference', 'Settings',
           'ada_curves', 'auc', 'balanced_split', 'cached_scores', 'd_memorisation',
           'full_data_config', 'kept_checkpoints', 'markdown_report', 'markdown_table',
           'parse_override', 'prepare_split', 'run_study', 'score_variant', 'set_dotted',
           'train_variant', 'variant_config', 'write_ada_figure', 'write_json']
