# Training image for VESSL (4x A100): CUDA PyTorch base, the package installed, `wmtp` as entry point.
#   docker build -t wmtp-lightning .
#   docker run --gpus all -v $PWD/storage:/workspace/storage wmtp-lightning fit --config configs/verifiable.yaml --config configs/vessl.yaml
# Evaluation (`wmtp test`, scripts/score_samples.py) runs generated programs under bubblewrap, which
# needs user namespaces: Docker's default seccomp profile forbids them, so run those with
# `--security-opt seccomp=unconfined` (or a profile that allows unshare/clone of namespaces);
# otherwise the sandbox refuses (it never runs programs unisolated unless told to).
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
WORKDIR /workspace
COPY pyproject.toml README.md ./
COPY wmtp_lightning ./wmtp_lightning
COPY configs ./configs
COPY scripts ./scripts
# torch comes from the base image; pip keeps it because pyproject's range admits it.
RUN pip install --no-cache-dir -e '.[vessl]'
ENTRYPOINT ["wmtp"]
CMD ["--help"]
