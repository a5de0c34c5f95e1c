"""The 2D lab's four-panel figure per snapshot, and the animation of a run.

Panels, as in the reference report (section 3):
  1. G and D losses and D's accuracy over the steps so far (from the logged metrics);
  2. real samples (blue) and generated samples (red);
  3. D(G(z)) over a grid of the latent space;
  4. D(x) over the sample space.
Maps use one colour scale: blue = D is sure the point is real (D = 1), red =
sure it is fake (D = 0), white = unsure (D = 0.5).

One `SnapshotFigure` is built per run and its artists are updated in place for
every frame, which keeps a frame to a few tens of milliseconds.
"""

from __future__ import annotations

import glob
import os
from typing import Sequence

import matplotlib
matplotlib.use('Agg')  # files only; no display needed
from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
import numpy as np
from PIL import Image

D_COLOURS = 'bwr_r'      # 0 (fake) red, 0.5 white, 1 (real) blue
REAL_COLOUR, FAKE_COLOUR = '#1f4fd1', '#d62728'


def _series(history: Sequence[dict], key: str):
  points = [(r['step'], r[key]) for r in history if key in r]
  return zip(*points) if points else ((), ())


class SnapshotFigure:
  """The four panels of one run, redrawn in place for each snapshot.

  Axes, ticks, labels and the colour bar are static (panel 1 spans the whole
  run from the start), so they are rendered once and each frame restores that
  background and draws only the curves, points, maps and title: text
  rendering is what makes a full matplotlib redraw slow.
  """

  def __init__(self, sample_bounds: Sequence[float], latent_box: float, title: str,
               num_steps: int, dpi: int = 72):
    self.title = title
    self.fig = Figure(figsize=(9, 8), dpi=dpi)
    self.canvas = FigureCanvasAgg(self.fig)
    self.fig.subplots_adjust(left=0.08, right=0.86, bottom=0.07, top=0.9, wspace=0.35,
                             hspace=0.3)
    (self.ax_curves, self.ax_points), (self.ax_latent, self.ax_sample) = self.fig.subplots(2, 2)

    ax = self.ax_curves
    self.line_d, = ax.plot([], [], color='tab:orange', lw=1.2, label='D loss')
    self.line_g, = ax.plot([], [], color='tab:green', lw=1.2, label='G loss')
    ax.set_xlim(0, max(num_steps, 1))
    ax.set_ylim(0, 2.0)
    ax.set_xlabel('step')
    ax.set_ylabel('loss (BCE)')
    ax.grid(alpha=0.3)
    self.ax_acc = ax.twinx()
    self.line_acc, = self.ax_acc.plot([], [], color='tab:purple', lw=1.0, ls='--',
                                      label='D accuracy')
    self.ax_acc.set_ylim(0, 1.02)
    self.ax_acc.set_ylabel('D accuracy')
    ax.legend(handles=[self.line_d, self.line_g, self.line_acc], loc='upper right',
              fontsize=8)
    ax.set_title('1. losses and D accuracy')

    xmin, xmax, ymin, ymax = sample_bounds
    ax = self.ax_points
    self.real, = ax.plot([], [], 'o', ms=1.5, color=REAL_COLOUR, alpha=0.5, label='real')
    self.fake, = ax.plot([], [], 'o', ms=1.5, color=FAKE_COLOUR, alpha=0.5, label='generated')
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.legend(loc='upper right', fontsize=8, markerscale=3)
    ax.set_title('2. real (blue) and generated (red)')

    blank = np.full((2, 2), 0.5)
    box = (-latent_box, latent_box, -latent_box, latent_box)
    self.latent = self.ax_latent.imshow(blank, origin='lower', extent=box, cmap=D_COLOURS,
                                        vmin=0, vmax=1, interpolation='nearest')
    self.ax_latent.set_title('3. D(G(z)) over the latent space')
    self.ax_latent.set_xlabel('$z_1$')
    self.ax_latent.set_ylabel('$z_2$')
    self.sample = self.ax_sample.imshow(blank, origin='lower', extent=tuple(sample_bounds),
                                        cmap=D_COLOURS, vmin=0, vmax=1, aspect='auto',
                                        interpolation='nearest')
    self.ax_sample.set_title('4. D(x) over the sample space')
    bar = self.fig.colorbar(self.sample, cax=self.fig.add_axes((0.89, 0.07, 0.02, 0.36)),
                            ticks=[0, 0.5, 1])
    bar.ax.set_yticklabels(['fake', 'unsure', 'real'])
    self.suptitle = self.fig.suptitle(title)

    self._dynamic = [(self.ax_curves, self.line_d), (self.ax_curves, self.line_g),
                     (self.ax_acc, self.line_acc), (self.ax_points, self.real),
                     (self.ax_points, self.fake), (self.ax_latent, self.latent),
                     (self.ax_sample, self.sample), (None, self.suptitle)]
    for _, artist in self._dynamic:
      artist.set_animated(True)
    self._background = None

  def _render_background(self):
    self.canvas.draw()
    self._background = self.canvas.copy_from_bbox(self.fig.bbox)

  def draw(self, snapshot: dict, history: Sequence[dict], step: int, extra: str = ''):
    """Updates every panel from host arrays (`lab.Lab.snapshot`) and the logged records."""
    steps, d_loss = _series(history, 'd_loss')
    self.line_d.set_data(list(steps), list(d_loss))
    steps, g_loss = _series(history, 'g_loss')
    self.line_g.set_data(list(steps), list(g_loss))
    acc = [(r['step'], (r['d_acc_real'] + r['d_acc_fake']) / 2) for r in history
           if 'd_acc_real' in r and 'd_acc_fake' in r]
    self.line_acc.set_data([a for a, _ in acc], [b for _, b in acc])
    losses = [v for v in list(d_loss) + list(g_loss) if np.isfinite(v)]
    top = max(2.0, np.ceil(max(losses) * 1.1)) if losses else 2.0
    if top != self.ax_curves.get_ylim()[1]:   # rare: the static background changes
      self.ax_curves.set_ylim(0, top)
      self._background = None

    self.real.set_data(*np.asarray(snapshot['real']).T)
    self.fake.set_data(*np.asarray(snapshot['fake']).T)
    self.latent.set_data(np.asarray(snapshot['d_latent']))
    self.sample.set_data(np.asarray(snapshot['d_sample']))
    self.suptitle.set_text(f'{self.title} - step {step:,}' + (f'\n{extra}' if extra else ''))

    if self._background is None:
      self._render_background()
    self.canvas.restore_region(self._background)
    for ax, artist in self._dynamic:
      (ax or self.fig).draw_artist(artist)

  def image(self) -> np.ndarray:
    """The current frame as an RGB uint8 array."""
    return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

  def save(self, path: str) -> str:
    """Writes the current frame as a PNG (fast zlib level: frames are many and short-lived)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(self.image()).save(path, compress_level=1)
    return path


def assemble_gif(frame_paths: Sequence[str], path: str, seconds_per_frame: float = 0.1,
                 hold_last: float = 2.0) -> str | None:
  """Writes the PNG frames, in order, as one looping GIF (the last frame held longer)."""
  if not frame_paths:
    return None
  frames = [Image.open(p).convert('RGB') for p in frame_paths]
  # One palette for all frames keeps colours steady and the encoding fast.
  palette = frames[-1].quantize(colors=128, method=Image.Quantize.MEDIANCUT)
  frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
  durations = [int(seconds_per_frame * 1000)] * len(frames)
  durations[-1] = int(hold_last * 1000)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                 optimize=False)
  return path


def frames_in(directory: str) -> list[str]:
  return sorted(glob.glob(os.path.join(directory, 'step_*.png')))


def side_by_side(images: Sequence[np.ndarray], path: str, columns: int | None = None) -> str:
  """Tiles equally sized RGB images (e.g. final figures of a sweep's settings) into one PNG."""
  columns = columns or len(images)
  h, w, _ = images[0].shape
  rows = -(-len(images) // columns)
  canvas = np.full((rows * h, columns * w, 3), 255, np.uint8)
  for i, image in enumerate(images):
    r, c = divmod(i, columns)
    canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(canvas).save(path)
  return path
