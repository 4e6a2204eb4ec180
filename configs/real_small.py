"""The generator on real faces, sized for this 2-core CPU (3,000 steps, about
35-50 minutes in the background): the shared real corpus (`registered_faces/real`: GRID, LRS2,
LRC-AR TV news, VoxCeleb2-style, StyleTalk public figures; validation = the
builder's held-out speakers and videos of every source). This is stage 1 of the generator shipped in the package
(s2v_jax/assets/generator, see its model card; stages 2 and 3, the lip warp,
are configs/real_small_warp.py).

Kept from the paper: the Speech2Vid network (audio CNN on 0.35 s of MFCC,
VGG-M identity encoder with skips B and C, transposed-conv decoder, 112x112),
one still of the same track at least `data.min_identity_distance` frames
from the target, L1 on the whole frame. Departures, and why (numbers in
BENCHMARKS.md, "Real faces"):

- identity residual, Adam, squared error for the first steps: as the
  quickstart (configs/quickstart.py); on real faces the paper's recipe and
  the quickstart's alike end at the still (the calibration run in the
  project brief: val L1 0.0451 vs the still's 0.0454, mouth motion 0.004 vs
  the real video's 0.040).
- mouth-weighted L1 (`train.mouth_weight`): most of a real frame's error is
  head pose and light the audio cannot explain; the mouth box is ~10% of it.
- the shipped sync expert's loss on 5-frame windows (Wav2Lip's "expert"
  loss, in the judge's n-way form): L1 alone rewards the average mouth; the
  judge rewards the mouth of this sound, against 4 shifted sounds of the same
  clip (`data.sync_negatives`). Its weight is small (0.03 against 1 + 4 for
  the L1 terms, Wav2Lip's 0.03 : 0.97): at 0.1 the generator gamed the
  judge within 500 steps, painting dark dots on lips and chin that raised
  the judge's score (sync recovered 0.54) at 2 dB of PSNR.
- an eighth of the paper's width (0.125), batch 8 windows of 5 frames: what
  the CPU trains in about an hour. configs/real.py is the same recipe at the
  paper's width for accelerators.
- min identity distance 12 frames (0.5 s): the LRC-AR clips are 1.2 s long.
- grid_s1, the one GRID speaker with 45 minutes of sentences, is left out
  (`data.exclude`): with it the general model is already a model of that
  speaker, and fine-tuning on her (issue #14's test) has nothing to add;
  without it the held-out numbers are the same or better.

    s2v build-dataset registered_faces/real --manual-dir ../shared/data/real/corpus --data-dir data/tfds
    python run_train.py --config configs/real_small.py --workdir workdirs/real_small
"""

from configs import default


def get_config():
    config = default.get_config()
    m, d, t = config.model, config.data, config.train
    m.width = 0.125                # an eighth of the paper's channels
    m.identity_residual = True     # a change to the still (see above)
    m.residual_region = (54, 106, 18, 94)  # ...of its lower face only (rows, columns of the crop): see above
    d.dataset = "registered_faces/real"
    d.manual_dir = "../shared/data/real/corpus"
    d.frame_stride = 5             # windows centred on every 5th frame: they tile the track
    d.window_frames = 5            # 5 consecutive frames per sample (the judge's window)
    d.sync_negatives = 4           # shifted audios of the same clip for the sync loss
    d.min_identity_distance = 12   # 0.5 s (LRC-AR clips are 1.2 s)
    d.exclude = "grid_s1/*"        # the whole grid_s1 speaker (899 tracks, 45 min): the speaker fine-tune's test, a
    #                                person the general model never saw. The shipped model (2026-12-04) is trained so; held
    #                                out, it is no worse than the one trained on grid_s1 (BENCHMARKS.md, "Retrained without grid_s1")
    d.num_workers = 0
    t.batch_size = 12              # windows (60 frames) per step
    t.num_steps = 3000
    t.optimizer = "adam"
    t.learning_rate = 1e-3
    t.schedule = "cosine"
    t.warmup_steps = 100
    t.weight_decay = 0.0
    t.mse_warmup_steps = 300
    t.mouth_weight = 4.0           # loss = L1 + 4 * mouth-box L1
    t.sync_weight = 0.03           # + 0.03 * the judge's n-way cross-entropy (ln 5 = 1.61 at chance); 0.1 games the judge
    t.sync_temperature = 0.1       # the judge's training temperature
    t.sync_blur_sigma = 1.0        # the judge sees the generated frames blurred by 1 px: no gain from dots
    t.sync_expert = ""             # '' = the judge shipped in the package, else an exported judge (s2v export)
    t.best_metric = "mouth_l1"     # keep the checkpoint whose mouths are closest to the real ones
    t.log_every = 50
    t.eval_every = 500
    t.checkpoint_every = 500
    t.keep_checkpoints = 20
    t.eval_batches = 20            # 240 windows = 1200 held-out frames
    t.early_stopping_patience = 0
    t.progress_bar = False
    return config
