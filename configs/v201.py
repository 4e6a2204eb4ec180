"""The authors' released generator `v201`: five stills, x2 bilinear (aligned
corners) up-sampling + conv, skips A, B and C, 109x109x3 output."""

from configs import default


def get_config():
    config = default.get_config()
    config.model.decoder = "bilinear"     # up-sample + conv stages instead of transposed convs
    config.model.skips = ("A", "B", "C")  # v201 also concatenates conv1 (skip A)
    config.model.num_identity_images = 5  # v201 takes five stills
    return config
