"""The Triton model repository and the CPU Triton server from the nvidia-pytriton wheel."""
