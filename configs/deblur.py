"""Deblurring CNN (paper Sec. 3.3, released v114), trained separately on
registered face crops blurred on the fly."""

import ml_collections

from configs import default


def get_config():
    config = default.get_config()
    config.task = "deblur"          # training task: the deblurring net
    config.model = m = ml_collections.ConfigDict()
    m.name = "deblur"               # the deblurring net instead of the generator
    m.features = 64                 # channels of the hidden conv layers
    m.num_layers = 10               # conv layers (3->64, 8 x 64->64, 64->3)
    m.image_size = 112              # side of the square face crops it is trained on
    m.num_identity_images = 1       # the samples carry one still (the generator's pipeline), unused by the net
    m.dtype = "float32"             # compute dtype: 'float32' or 'bfloat16'
    config.train.learning_rate = 1e-3  # residual net, mean-L1: a larger rate than the generator's
    config.train.blur_sigma = (0.5, 2.5)  # range of the Gaussian blur sigma (pixels) drawn per image
    return config
