"""srdata: turn folders of raw images into paired HR/LR super-resolution datasets.

This package never imports Paddle: it must stay installable and fast for users who only
prepare data.
"""

__version__ = "0.1.0"
