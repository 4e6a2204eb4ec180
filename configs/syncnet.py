"""The sync expert (SyncNet-style, s2v_jax/models/syncnet.py; scored by s2v_jax/evaluation/sync_expert.py) at a small
width for CPU, trained on the synthetic corpus; it scores lip sync (LSE-D,
LSE-C, AV offset) in `s2v evaluate --sync-expert`.

    python run_train.py --config configs/syncnet.py --workdir workdirs/syncnet
    s2v train-sync --config configs/syncnet.py --workdir workdirs/syncnet   # the same, as an alias
    s2v train-sync --config configs/syncnet.py --workdir W data.dataset=registered_faces/lrs2 model.width=1.0
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.task = "sync"            # training task (s2v_jax.train.tasks): the sync expert

    config.model = m = ml_collections.ConfigDict()
    m.name = "syncnet"              # model family (the sync expert)
    m.width = 0.125                 # channel multiplier (1.0 = SyncNet's VGG-M widths; 0.125 for CPU)
    m.embed_dim = 128               # embedding size of each stream (SyncNet: 256 at fc7)
    m.normalize = True              # L2-normalise embeddings: distances in [0, 2], stable contrastive training
    m.num_frames = 5                # video frames per sample, centred on the frame (0.2 s)
    m.audio_steps = 20              # MFCC steps per sample, centred on the frame (0.2 s)
    m.lower_face_top = 56           # first row of the 112 crop the video stream sees (lower half: nose tip to chin)
    m.grayscale = True              # grey frames stacked to 5 channels (False: RGB, 15 channels)
    m.dtype = "float32"             # compute dtype: 'float32' or 'bfloat16'
    m.bn_momentum = 0.9             # BatchNorm running-average momentum
    m.bn_epsilon = 1e-5             # BatchNorm variance epsilon

    config.data = d = ml_collections.ConfigDict()
    d.dataset = "synthetic_talking_faces/small"  # TFDS name[/config] of the registered corpus (input_pipeline's)
    d.data_dir = "data/tfds"        # TFDS data directory (built there on first use where a builder can)
    d.manual_dir = ""               # source videos for registered_faces (only needed to build it)
    d.frame_stride = 1              # every k-th frame of a track is a sample centre
    d.max_offset = 15               # negatives: audio shifted by up to this many frames ...
    d.min_offset = 3                # ... and at least this many (0.12 s: near-zero shifts are not "out of sync")
    d.num_negatives = 1             # shifted audios per window (1 for 'contrastive'; K > 1 for 'nway')
    d.augment = True                # random brightness/contrast and horizontal flip of the video (sync unchanged)
    d.augment_shift_px = 0          # + a random shift of the five crops by up to this many pixels (real video: 4)
    d.augment_rotate_deg = 0.0      # + a random rotation of the five crops by up to this many degrees
    d.augment_scale = 0.0           # + a random scaling of the five crops by 1 +- up to this
    d.augment_jpeg = 0.0            # + JPEG re-compression (quality 30-90) with this probability (real video: 0.5)
    d.near_still = 0.0              # fraction of windows also given as a near-still copy (s2v_jax.data.near_still)
    d.near_still_motion = 0.3       # the copy keeps at most this fraction of the window's motion (20% frozen: none)
    d.generated_negatives = ""      # directories of generated copies, comma-separated (s2v_jax.data.generated_negatives; '' = none) ...
    d.generated_negatives_prob = 0.5  # ... used instead of the shrunk copy on this fraction of a track's near-still windows
    d.exclude = ""                  # comma-separated source patterns or prefixes never sampled, in training or
    #                                 validation (e.g. 'lrs2_b/,grid_s1/sw*'; s2v_jax.data.track_selection)
    d.repeat = ""                   # 'pattern:factor,...': oversample matching training tracks (e.g. 'lrs2/*:4')
    d.num_workers = 0               # grain worker processes (0 = load in the main process)
    d.shuffle_seed = 0              # seed of the sample order and offsets (resumes exactly with the checkpoint)

    config.train = t = ml_collections.ConfigDict()
    t.batch_size = 32               # global batch of video windows (each gives an in-sync and a shifted pair)
    t.num_steps = 3000              # training steps
    t.optimizer = "adam"            # 'sgd' (with momentum), 'adam' or 'adamw' (s2v_jax.train.optimizer)
    t.learning_rate = 1e-3          # peak learning rate
    t.momentum = 0.9                # SGD momentum (unused by adam)
    t.weight_decay = 0.0            # kernel weight decay: L2 on the gradient for sgd/adam, decoupled for adamw (0 disables)
    t.nesterov = False              # Nesterov momentum (sgd only)
    t.schedule = "cosine"           # 'constant' or 'cosine' (to 0 at num_steps)
    t.warmup_steps = 100            # linear warm-up steps
    t.loss = "contrastive"          # 'contrastive' (SyncNet's pairs) or 'nway' (softmax over K shifts: Perfect Match)
    t.margin = 1.0                  # contrastive margin: shifted pairs are pushed at least this far apart
    t.temperature = 0.1             # 'nway': logits = -distance / temperature
    t.near_still_weight = 0.0       # weight of the near-still terms: such a copy carries no offset, and the
                                    # speech matches the moving mouth better (train/tasks/sync.py)
    t.init_from = ""                # start from this judge's weights (a workdir or an export); '' = random
    t.init_widen = False            # with init_from: a smaller array at the same place fills the new one's leading block
    t.parallel = "pmap"             # data parallelism: 'pmap' or 'mesh' (s2v_jax.train.parallel)
    t.seed = 0                      # parameter initialisation seed
    t.log_every = 50                # steps between metric logs (host syncs only here)
    t.eval_every = 500              # steps between validations (0 = never)
    t.checkpoint_every = 500        # steps between periodic checkpoints
    t.early_stopping_patience = 0   # evaluations without improvement before stopping (0 = never)
    t.keep_checkpoints = 2          # periodic checkpoints kept (the best-on-validation one is kept too)
    t.eval_batches = 8              # validation batches per evaluation
    t.eval_at_start = False         # validate the starting weights too (step 0)
    t.progress_bar = True           # tqdm progress bar on process 0
    return config
