"""Paper default with five identity stills (Sec. 4.2): conv1 becomes 7x7x15x96."""

from configs import default


def get_config():
    config = default.get_config()
    config.model.num_identity_images = 5  # five stills of the same track, stacked channel-wise
    return config
