"""Speech2Vid as the paper describes it: one still, transposed-conv decoder,
skips B and C, 112x112 output, L1 loss, SGD with momentum.

    python run_train.py --config configs/default.py --workdir workdirs/default
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.task = "generator"       # training task (s2v_jax.train.tasks): 'generator', 'deblur' or 'sync'

    config.model = m = ml_collections.ConfigDict()
    m.name = "speech2vid"           # model family: 'speech2vid' (generator) or 'deblur'
    m.decoder = "transposed"        # 'transposed' (paper, 112x112) or 'bilinear' (released v201, 109x109)
    m.conv_transpose = "auto"       # transposed-conv kernel: 'auto' (phase form on CPU, lax elsewhere), 'lax', 'phase'
    m.skips = ("B", "C")            # identity activations concatenated into the decoder: A=conv1, B=pool1, C=conv2
    m.num_identity_images = 1       # 1 still (112x112x3) or 5 stills stacked channel-wise (112x112x15)
    m.width = 1.0                   # channel multiplier for every layer (1.0 = the paper's widths)
    m.dtype = "float32"             # compute dtype: 'float32' or 'bfloat16' (parameters stay float32)
    m.bn_momentum = 0.9             # BatchNorm running-average momentum (flax convention: weight of the old value)
    m.bn_epsilon = 1e-5             # BatchNorm variance epsilon
    m.identity_residual = False     # not in the paper: output sigmoid(logit(first still) + decoder), a change to the still
    m.residual_region = ()          # with identity_residual: (top, bottom, left, right) of the 112 crop it may change; () = all
    m.warp = 0.0                    # not in the paper: with identity_residual, warp the still by a predicted flow of at most this many px first
    m.audio_width = 0.0             # not in the paper: channel multiplier of the audio CNN's conv1-fc6 (0 = width; fc7 keeps width)
    m.warp_only = False             # with warp > 0: the output is the warped still alone (no painted change)
    m.interior = False              # not in the paper: with warp_only, paint the mouth's interior where a predicted mask opens
    m.interior_region = ()          # with interior: (top, bottom, left, right) of the 112 crop the mask may cover

    config.data = d = ml_collections.ConfigDict()
    d.dataset = "registered_faces/lrs2"  # TFDS name[/config] of the registered corpus
    d.data_dir = "data/tfds"        # TFDS data directory (built there on first use where a builder can)
    d.manual_dir = ""               # folder of source videos for registered_faces builds ('' = none given)
    d.frame_stride = 5              # every k-th frame of a track is a sample (paper: 5)
    d.min_identity_distance = 25    # identity frames at least this many frames from the target (1 s)
    d.identity_closed = 0           # not in the paper: > 1 = the identity still is the most closed mouth of this many drawn frames
    d.identity_closed_prob = 1.0    # ... on this fraction of samples (the rest: the still drawn as in the paper)
    d.exclude = ""                  # comma-separated patterns on track source paths never sampled (e.g. 'grid_s1/sw*')
    d.repeat = ""                   # training only: 'pattern:factor,...', a matching track's samples appear factor times
    d.window_frames = 1             # consecutive target frames per sample (5: the judge's window, for the sync loss)
    d.sync_negatives = 0            # shifted audios per window for the sync loss and its validation (needs window_frames=5)
    d.augment = True                # random brightness/contrast/flip jitter on training samples
    d.num_workers = 2               # grain worker processes (0 = load in the main process)
    d.shuffle_seed = 0              # seed of the sampling order (resumes exactly with the checkpoint)

    config.train = t = ml_collections.ConfigDict()
    t.batch_size = 64               # global batch, split evenly over all devices
    t.num_steps = 200_000           # training steps (paper: at most 20 epochs)
    t.optimizer = "sgd"             # 'sgd' with momentum (paper), 'adam' or 'adamw' (not the paper)
    t.learning_rate = 1e-5          # paper's fixed rate for MatConvNet's summed L1; see configs/tiny.py for a tuned mean-L1 rate
    t.momentum = 0.9                # SGD momentum
    t.nesterov = False              # Nesterov momentum
    t.weight_decay = 5e-4           # kernel weight decay: L2 on the gradient (sgd/adam), decoupled (adamw); 0 disables
    t.schedule = "constant"         # learning-rate schedule: 'constant' (paper) or 'cosine'
    t.warmup_steps = 0              # linear warm-up steps before the schedule
    t.mse_warmup_steps = 0          # first steps on squared error, then L1 (0 = the paper's L1 throughout)
    t.lip_weight = 0.0              # not in the paper: weight of the lip-warp landmark loss (needs model.warp > 0)
    t.mouth_weight = 0.0            # not in the paper: + this * L1 of the mouth box (rows 58-99, columns 24-87)
    t.paint_weight = 0.0            # not in the paper: + this * the paint outside the warped inner lips (interior models, lip_weight > 0)
    t.mask_weight = 0.0             # not in the paper: + this * |occlusion mask - real inner-lip opening| (interior models, lip_weight > 0)
    t.opening_weight = 0.0          # not in the paper: + this * the pixel error inside the real inner-lip opening (interior models, lip_weight > 0)
    t.paint_region = "warped"       # whose inner lips bound the paint: 'warped' (the still's, as the warp moves them) or 'real'
    t.sync_weight = 0.0             # not in the paper: + this * the training judge's n-way cross-entropy on 5-frame windows
    t.sync_temperature = 0.1        # the sync loss's softmax temperature (the judge's own)
    t.sync_blur_sigma = 0.0         # the judge sees the generated frames blurred by this many px (0 = not)
    t.sync_expert = ""              # the sync loss's judge: '' = the training judge shipped in the package, or an export
    t.best_metric = "l1"            # validation metric that picks the best checkpoint: 'l1', 'mouth_l1' or 'lip_lmd'
    t.init_from = ""                # start a new run from this model's weights ('shipped', a workdir or an export); '' = random
    t.init_widen = False            # with init_from: a smaller array at the same place fills the new one's leading block
    #                                 (function-preserving widening of hidden layers, e.g. model.audio_width)
    t.parallel = "pmap"             # data parallelism: 'pmap' (per-device step) or 'mesh' (jit + NamedSharding)
    t.seed = 0                      # parameter initialisation seed
    t.log_every = 100               # steps between metric logs (host syncs happen only here)
    t.eval_every = 2000             # steps between validations
    t.checkpoint_every = 2000       # steps between periodic checkpoints
    t.keep_checkpoints = 3          # periodic checkpoints kept (the best-on-validation one is kept too)
    t.eval_at_start = False         # validate the starting weights too (step 0); they may end up the best
    t.eval_batches = 20             # validation batches per evaluation
    t.early_stopping_patience = 10  # evaluations without validation improvement before stopping (0 = never)
    t.progress_bar = True           # tqdm progress bar on process 0 (False for logs only)
    return config
