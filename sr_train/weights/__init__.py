"""Weights files: srkit's own format (`srkit`: safetensors with the architecture inside), other
projects' files (`foreign`: PaddleGAN, BasicSR, Real-ESRGAN; pickles read by `safe_pickle`, which
refuses anything but arrays), and `load`, which reads any of them into a network.
"""
